package ui

import "strings"

// rendererInfo is how the window will be drawn, as chooseRenderer found.
type rendererInfo struct {
	API      string // "OpenGL ES (EGL)"; empty: not probed on this platform
	Window   string // "wayland" or "x11"
	Renderer string // GL_RENDERER, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
	Software bool   // a CPU rasterizer, not a GPU
	Why      string // why software, when it is
}

// logAttrs are the attributes of the one "renderer" log line.
func (r rendererInfo) logAttrs() []any {
	kind := "gpu"
	switch {
	case r.Software:
		kind = "software"
	case r.Renderer == "":
		kind = "unknown" // EGL works, but no context could be made current without a surface
	}
	attrs := []any{"kind", kind, "api", r.API, "window", r.Window, "gl_renderer", r.Renderer}
	if r.Why != "" {
		attrs = append(attrs, "why", r.Why)
	}
	return attrs
}

// isSoftwareRenderer tells Mesa's and other known CPU rasterizers by their
// GL_RENDERER string.
func isSoftwareRenderer(glRenderer string) bool {
	r := strings.ToLower(glRenderer)
	for _, s := range []string{"llvmpipe", "softpipe", "software rasterizer", "swrast", "swiftshader"} {
		if strings.Contains(r, s) {
			return true
		}
	}
	return false
}

// isVulkanError: Gio's Vulkan errors (package gioui.org/internal/vk) all
// start so; Gio exports no sentinel for them.
func isVulkanError(err error) bool {
	return strings.HasPrefix(err.Error(), "vulkan: ")
}
