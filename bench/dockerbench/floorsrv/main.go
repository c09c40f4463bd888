// Command floorsrv is the smallest useful server in a container: the floor
// the Docker benchmarks compare sandbox creation against ("docker run -d of
// a static server to its first answer").
package main

import (
	"net/http"
	"os"
)

func main() {
	addr := ":8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	_ = http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
}
