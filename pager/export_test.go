package pager

// EncodeUnchecked encodes without validation, for tests that need invalid pages.
func EncodeUnchecked(pg *Page) []byte { return pg.appendCBOR(nil) }
