// Package uitest drives the kiosk UI (package ui) headlessly with real Gio
// input events, for flow tests outside package ui: against ui/uifake, or
// against the real appliance and the simulators (atm/appliance).
//
// A Driver owns a ui.App, an offscreen GPU window (gioui.org/gpu/headless;
// EGL_PLATFORM=surfaceless is set when there is no display) and a Gio input
// router, wired as app.Window wires them. Key, Type and Click queue key and
// pointer events on the router; the App sees them on the next Frame, which
// handles them, lays the current screen out and renders it. Click finds its
// target in the semantic tree of the last frame, where every text the
// screens draw is published with its bounds (Nodes, Labels); buttons are
// found by choice id ("start", "lang.en", "key.5", "preset1", "nearest0",
// "finish", ...) or by label. Image returns the rendered pixels, for example
// to decode the QR code as a phone camera would.
//
// Frames are drawn only when the test asks: Frame draws one, WaitFor and
// WaitScreen draw until a condition holds or a real-time bound passes,
// waking on the Backend's Changed signal as ui.Run does.
package uitest
