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
