// Package atomicfile replaces files so that a crash leaves either the old
// or the new content: write a temporary file, fsync it, rename it over the
// target, fsync the directory.
//
//	// Durable: a crash after Write returns leaves the new content.
//	err := atomicfile.Write(filepath.Join(dir, "config.json"), b, 0o644)
//
//	// Old or new after a crash, never torn; the rename is not waited for.
//	err = atomicfile.Replace(path, b, 0o644)
//
//	// After renames of one's own: make them durable.
//	err = atomicfile.SyncDir(dir)
package atomicfile
