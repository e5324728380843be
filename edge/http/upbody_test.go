package httpedge

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// The head of an upstream's answer is recycled (upBodyPool) only once the
// client's response is complete: the response's header map holds the
// fields' value slices, and the HTTP/1 loop writes a head that was not
// committed (an empty body) after the handler returned. Many clients over
// few upstream connections, each answer with fields of its own: a head
// released early would be another request's by the time it is written.
func TestProxyRecycledHeadOutlivesResponse(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		w.Header().Set("X-Echo", id)
		w.Header().Set("X-Echo-Twice", id+id)
		w.Header().Add("Set-Cookie", "a="+id)
		w.Header().Add("Set-Cookie", "b="+id)
		if len(id)%2 == 0 {
			w.Header().Set("Content-Length", "0") // head written at the loop's finish
			return
		}
		w.Write([]byte(id))
	})
	_, addr := n.start(Config{Listener: "t", Sites: []Site{n.proxySite("p", []string{"example.org"}, be.addr())}}, Options{})
	const clients, each = 16, 150
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client(addr)
			for j := 0; j < each; j++ {
				id := strconv.Itoa(i*1000 + j)
				resp, body := get(t, c, "http://example.org/?id="+id)
				want := ""
				if len(id)%2 == 1 {
					want = id
				}
				ck := resp.Header.Values("Set-Cookie")
				if resp.StatusCode != 200 || resp.Header.Get("X-Echo") != id || resp.Header.Get("X-Echo-Twice") != id+id ||
					len(ck) != 2 || ck[0] != "a="+id || ck[1] != "b="+id || body != want {
					errs <- fmt.Errorf("request %s: %d, X-Echo %q, X-Echo-Twice %q, Set-Cookie %q, body %q", id, resp.StatusCode,
						resp.Header.Get("X-Echo"), resp.Header.Get("X-Echo-Twice"), ck, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
