package ui

// ApplyForTest puts the App in the UI-owned part of st, as Render does
// before its frame.
func (a *App) ApplyForTest(st State) { a.apply(st) }

// SetEntryForTest puts the App back on the Amount screen with entry e.
func (a *App) SetEntryForTest(e string) {
	a.local = ScreenAmount
	a.entry = e
	a.inputAt = a.now()
}

// LaidLabel is what the last frame recorded about one text: its lines and
// whether it overflowed its space.
type LaidLabel = laidLabel

// TraceForTest makes the App record every text it lays out.
func (a *App) TraceForTest() { a.trace = true }

// LaidForTest returns the texts of the last frame (after TraceForTest).
func (a *App) LaidForTest() []LaidLabel { return a.laid }
