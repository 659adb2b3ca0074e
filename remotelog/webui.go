package remotelog

import (
	"embed"
	"io/fs"
	"net/http"
)

// The web page that `rlog serve` and `rlog keep --listen` offer at /: it
// reads a log through a trustless gateway (this one, or any other named in
// its gateway field) and verifies it in the browser. Plain files, no
// build step: index.html, web/app.js (the page), web/verify.js (CIDs,
// DAG-CBOR, IPNS records, pages, messages).
//
//go:embed web
var webFiles embed.FS

// webPage serves the page itself at /.
func webPage() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, err := webFiles.ReadFile("web/index.html")
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-cache")
		rw.Write(b)
	})
}

// webAssets serves its scripts under /web/.
func webAssets() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	files := http.StripPrefix("/web/", http.FileServerFS(sub))
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(rw, r)
	})
}
