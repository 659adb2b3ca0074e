package pager

// EncodeUnchecked encodes without validation, for tests that need invalid pages.
func EncodeUnchecked(pg *Page) []byte { return pg.appendCBOR(nil) }

// EncodeIndexUnchecked encodes an index node without validation.
func EncodeIndexUnchecked(ix *Index) []byte { return ix.appendCBOR(nil) }

// EncodeWindowNodeUnchecked encodes a window node without validation.
func EncodeWindowNodeUnchecked(wn *WindowNode) []byte { return wn.appendCBOR(nil) }
