//go:build ((linux && !android) || freebsd) && cgo

package ui

/*
#cgo linux pkg-config: egl wayland-client x11
#cgo freebsd LDFLAGS: -lEGL -lwayland-client -lX11
#cgo freebsd CFLAGS: -I/usr/local/include
#cgo freebsd LDFLAGS: -L/usr/local/lib
#cgo CFLAGS: -DEGL_NO_X11

#include <stdlib.h>
#include <string.h>
#include <EGL/egl.h>
#include <wayland-client.h>
#include <X11/Xlib.h>

#define CARDLESS_GL_RENDERER 0x1F01

typedef const unsigned char *(*cardless_glGetString)(unsigned int);

struct cardless_egl_probe {
	const char *stage;   // the call that failed; NULL on success
	EGLint err;          // eglGetError() after it
	char renderer[256];  // GL_RENDERER
};

// cardless_probe_egl does what Gio does to draw a window (eglGetDisplay on
// the window system's connection, eglInitialize, an OpenGL ES config for
// windows, a context) and reads GL_RENDERER with the context current
// without a surface. Everything is released before it returns.
static void cardless_probe_egl(void *native, struct cardless_egl_probe *p) {
	p->stage = NULL;
	p->err = EGL_SUCCESS;
	p->renderer[0] = 0;
	EGLDisplay d = eglGetDisplay((EGLNativeDisplayType)native);
	if (d == EGL_NO_DISPLAY) {
		p->stage = "eglGetDisplay";
		p->err = eglGetError();
		return;
	}
	EGLint major, minor;
	if (!eglInitialize(d, &major, &minor)) {
		p->stage = "eglInitialize";
		p->err = eglGetError();
		return;
	}
	EGLint attribs[] = {
		EGL_RENDERABLE_TYPE, EGL_OPENGL_ES2_BIT,
		EGL_SURFACE_TYPE, EGL_WINDOW_BIT,
		EGL_BLUE_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_RED_SIZE, 8,
		EGL_CONFIG_CAVEAT, EGL_NONE,
		EGL_NONE,
	};
	EGLConfig cfg;
	EGLint n = 0;
	if (!eglChooseConfig(d, attribs, &cfg, 1, &n) || n < 1) {
		p->stage = "eglChooseConfig (OpenGL ES 2, window, 8-bit RGB)";
		p->err = eglGetError();
		eglTerminate(d);
		return;
	}
	if (!eglBindAPI(EGL_OPENGL_ES_API)) {
		p->stage = "eglBindAPI (OpenGL ES)";
		p->err = eglGetError();
		eglTerminate(d);
		return;
	}
	EGLint ctxAttribs[] = {EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE};
	EGLContext ctx = eglCreateContext(d, cfg, EGL_NO_CONTEXT, ctxAttribs);
	if (ctx == EGL_NO_CONTEXT) {
		p->stage = "eglCreateContext (OpenGL ES 2)";
		p->err = eglGetError();
		eglTerminate(d);
		return;
	}
	if (eglMakeCurrent(d, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx)) {
		cardless_glGetString getString = (cardless_glGetString)eglGetProcAddress("glGetString");
		const unsigned char *r = getString ? getString(CARDLESS_GL_RENDERER) : NULL;
		if (r != NULL) {
			strncpy(p->renderer, (const char *)r, sizeof p->renderer - 1);
			p->renderer[sizeof p->renderer - 1] = 0;
		}
		eglMakeCurrent(d, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
	}
	eglDestroyContext(d, ctx);
	eglTerminate(d);
}

static void *cardless_wl_connect(void) { return wl_display_connect(NULL); }
static void cardless_wl_disconnect(void *d) { wl_display_disconnect((struct wl_display *)d); }
static void *cardless_x11_open(void) { return XOpenDisplay(NULL); }
static void cardless_x11_close(void *d) { XCloseDisplay((Display *)d); }
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

// fullscreenAfterFirstEvent: see Run. Gio's Wayland window needs it; its
// X11 window takes it as well as a full screen start.
const fullscreenAfterFirstEvent = true

// chooseRenderer finds out, before Gio opens the window, how the window
// will be drawn. Gio draws through OpenGL ES on EGL (Vulkan only when EGL
// fails), on a display connection of the kind it opens: Wayland first, then
// X11. Mesa's EGL chooses: the GPU's driver when one can serve the display,
// and otherwise its software rasterizer, llvmpipe (no GPU, no access to its
// render node, a compositor that takes no GPU buffers such as cage with its
// pixman renderer, or LIBGL_ALWAYS_SOFTWARE=1 in the environment).
// chooseRenderer opens a connection of its own, initializes EGL on it as
// Gio does, reads GL_RENDERER from a context and closes everything, so
// that the log says which it is before the first frame.
//
// An error means OpenGL ES cannot be used here, and says why; Gio will
// still try Vulkan.
func chooseRenderer() (rendererInfo, error) {
	kind, native, closeDisplay := openWindowSystem()
	if native == nil {
		return rendererInfo{}, fmt.Errorf("no Wayland or X11 display to draw on (WAYLAND_DISPLAY=%q, XDG_RUNTIME_DIR=%q, DISPLAY=%q)",
			os.Getenv("WAYLAND_DISPLAY"), os.Getenv("XDG_RUNTIME_DIR"), os.Getenv("DISPLAY"))
	}
	defer closeDisplay()
	var p C.struct_cardless_egl_probe
	C.cardless_probe_egl(native, &p)
	if p.stage != nil {
		err := &eglError{Call: C.GoString(p.stage), Code: int(p.err)}
		if err.Call == "eglInitialize" {
			// Mesa's EGL falls back to software by itself, so this
			// failure is the software rasterizer's too.
			return rendererInfo{}, fmt.Errorf("on %s: %w: no EGL driver could open the display, not even the software one (are libegl-mesa0 and libgl1-mesa-dri installed, and LIBGL_DRIVERS_PATH unset?)", kind, err)
		}
		return rendererInfo{}, fmt.Errorf("on %s: %w", kind, err)
	}
	r := C.GoString(&p.renderer[0])
	info := rendererInfo{API: "OpenGL ES (EGL)", Window: kind, Renderer: r, Software: isSoftwareRenderer(r)}
	switch v := os.Getenv("LIBGL_ALWAYS_SOFTWARE"); {
	case info.Software && v != "" && v != "0" && v != "false":
		info.Why = "LIBGL_ALWAYS_SOFTWARE=" + v
	case info.Software:
		info.Why = "EGL found no GPU driver for this display"
	}
	return info, nil
}

// openWindowSystem connects to the display server as Gio does: Wayland
// (WAYLAND_DISPLAY, or wayland-0 in XDG_RUNTIME_DIR), else X11 (DISPLAY).
func openWindowSystem() (kind string, native unsafe.Pointer, closeDisplay func()) {
	if d := C.cardless_wl_connect(); d != nil {
		return "wayland", d, func() { C.cardless_wl_disconnect(d) }
	}
	if d := C.cardless_x11_open(); d != nil {
		return "x11", d, func() { C.cardless_x11_close(d) }
	}
	return "", nil, func() {}
}

// eglError is an EGL call's failure.
type eglError struct {
	Call string
	Code int // eglGetError()
}

func (e *eglError) Error() string {
	return fmt.Sprintf("%s failed: %s (0x%x)", e.Call, eglErrorName(e.Code), e.Code)
}

// eglErrorName names EGL's error codes (EGL 1.5, table 3.1).
func eglErrorName(code int) string {
	names := map[int]string{
		0x3000: "EGL_SUCCESS", 0x3001: "EGL_NOT_INITIALIZED", 0x3002: "EGL_BAD_ACCESS", 0x3003: "EGL_BAD_ALLOC",
		0x3004: "EGL_BAD_ATTRIBUTE", 0x3005: "EGL_BAD_CONFIG", 0x3006: "EGL_BAD_CONTEXT", 0x3007: "EGL_BAD_CURRENT_SURFACE",
		0x3008: "EGL_BAD_DISPLAY", 0x3009: "EGL_BAD_MATCH", 0x300A: "EGL_BAD_NATIVE_PIXMAP", 0x300B: "EGL_BAD_NATIVE_WINDOW",
		0x300C: "EGL_BAD_PARAMETER", 0x300D: "EGL_BAD_SURFACE", 0x300E: "EGL_CONTEXT_LOST",
	}
	if n, ok := names[code]; ok {
		return n
	}
	return fmt.Sprintf("EGL error %d", code)
}
