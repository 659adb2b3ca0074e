package cas

// SetPackMax makes packs full at n bytes until the returned function is
// called (tests that need several packs).
func SetPackMax(n int64) (restore func()) {
	old := packMax
	packMax = n
	return func() { packMax = old }
}

// HoldWrites keeps the store from writing the blocks PutPacked hands it
// (they stay "flying") until release is called.
func (e *Embedded) HoldWrites() (release func()) {
	e.load.Lock()
	return e.load.Unlock
}
