package cas

// SetPackMax makes packs full at n bytes until the returned function is
// called (tests that need several packs).
func SetPackMax(n int64) (restore func()) {
	old := packMax
	packMax = n
	return func() { packMax = old }
}
