//go:build !(((linux && !android) || freebsd) && cgo)

package ui

// fullscreenAfterFirstEvent: see Run. On Windows and macOS a window that
// starts full screen takes the screen's size.
const fullscreenAfterFirstEvent = false

// chooseRenderer: here Gio's platform renderer (Direct3D 11 on Windows,
// Metal on macOS) is not probed beforehand; its errors are Gio's own.
func chooseRenderer() (rendererInfo, error) { return rendererInfo{}, nil }
