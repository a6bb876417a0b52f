package ui

import (
	"errors"
	"reflect"
	"testing"
)

// GL_RENDERER strings of Mesa's and others' drivers: only CPU rasterizers
// are software (an AMD GPU's string names LLVM too).
func TestIsSoftwareRenderer(t *testing.T) {
	for r, want := range map[string]bool{
		"llvmpipe (LLVM 15.0.6, 256 bits)":         true,
		"softpipe":                                 true,
		"Software Rasterizer":                      true,
		"Google SwiftShader":                       true,
		"Mesa Intel(R) UHD Graphics 620 (KBL GT2)": false,
		"AMD Radeon RX 580 Series (polaris10, LLVM 15.0.6, DRM 3.49, 6.1.0-9)": false,
		"NVIDIA GeForce GTX 1650/PCIe/SSE2":                                    false,
		"V3D 4.2":                                                              false,
		"":                                                                     false,
	} {
		if got := isSoftwareRenderer(r); got != want {
			t.Errorf("isSoftwareRenderer(%q) = %v, want %v", r, got, want)
		}
	}
}

func TestRendererLogAttrs(t *testing.T) {
	sw := rendererInfo{API: "OpenGL ES (EGL)", Window: "wayland", Renderer: "llvmpipe (LLVM 15.0.6, 256 bits)", Software: true, Why: "LIBGL_ALWAYS_SOFTWARE=1"}
	want := []any{"kind", "software", "api", "OpenGL ES (EGL)", "window", "wayland", "gl_renderer", "llvmpipe (LLVM 15.0.6, 256 bits)", "why", "LIBGL_ALWAYS_SOFTWARE=1"}
	if got := sw.logAttrs(); !reflect.DeepEqual(got, want) {
		t.Errorf("software: %q, want %q", got, want)
	}
	gpu := rendererInfo{API: "OpenGL ES (EGL)", Window: "x11", Renderer: "V3D 4.2"}
	want = []any{"kind", "gpu", "api", "OpenGL ES (EGL)", "window", "x11", "gl_renderer", "V3D 4.2"}
	if got := gpu.logAttrs(); !reflect.DeepEqual(got, want) {
		t.Errorf("gpu: %q, want %q", got, want)
	}
	unknown := rendererInfo{API: "OpenGL ES (EGL)", Window: "wayland"}
	want = []any{"kind", "unknown", "api", "OpenGL ES (EGL)", "window", "wayland", "gl_renderer", ""}
	if got := unknown.logAttrs(); !reflect.DeepEqual(got, want) {
		t.Errorf("unknown: %q, want %q", got, want)
	}
}

// windowError names EGL's failure when Gio reports only its Vulkan
// fallback's, and passes every other end of the window through.
func TestWindowError(t *testing.T) {
	vk := errors.New("vulkan: vkCreateInstance: error -9")
	egl := errors.New("on wayland: eglInitialize failed: EGL_NOT_INITIALIZED (0x3001)")
	sw := rendererInfo{API: "OpenGL ES (EGL)", Window: "wayland", Renderer: "llvmpipe (LLVM 15.0.6, 256 bits)", Software: true}
	other := errors.New("wayland: no outputs available")
	for _, tc := range []struct {
		name    string
		err     error
		rend    rendererInfo
		rendErr error
		want    string // "": err itself
	}{
		{name: "closed", err: nil, rend: sw},
		{name: "not Vulkan", err: other, rendErr: egl},
		{name: "EGL failed", err: vk, rendErr: egl,
			want: "ui: no usable renderer: OpenGL ES (EGL): on wayland: eglInitialize failed: EGL_NOT_INITIALIZED (0x3001); then Vulkan: vulkan: vkCreateInstance: error -9"},
		{name: "EGL works, not for the window", err: vk, rend: sw,
			want: "ui: no usable renderer: OpenGL ES (EGL) works here (llvmpipe (LLVM 15.0.6, 256 bits)) but not for this window; then Vulkan: vulkan: vkCreateInstance: error -9"},
		{name: "not probed", err: vk,
			want: "ui: no usable renderer: OpenGL ES (EGL) failed, then Vulkan: vulkan: vkCreateInstance: error -9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := windowError(tc.err, tc.rend, tc.rendErr)
			if tc.want == "" {
				if got != tc.err {
					t.Fatalf("got %v, want %v unchanged", got, tc.err)
				}
				return
			}
			if got == nil || got.Error() != tc.want || !errors.Is(got, ErrNoRenderer) || !errors.Is(got, vk) {
				t.Fatalf("got %v\nwant %s (wrapping ErrNoRenderer and Gio's error)", got, tc.want)
			}
		})
	}
}
