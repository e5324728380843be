package plan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// meaningfulZeros are the fields where 0 is a value the runtime uses as
// such, not a gap it fills: each with what 0 means.
var meaningfulZeros = map[string]string{
	"retries":  "no retry on another server (a pool of one)",
	"status":   "a health check accepting any 2xx or 3xx",
	"priority": "an nftables chain at the filter priority (0)",
}

// TestGoldenPlansHaveNoZeroDefaults walks every golden plan: no number is
// 0 and no duration "0s" unless 0 is what the node runs with. The edge
// constructors refuse zeros, so a zero here would be a value the plan
// forgot to resolve (before the defaults table moved into plan, limits and
// max_conns were 0 and the runtime replaced them).
func TestGoldenPlansHaveNoZeroDefaults(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "openfoodfacts", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden plans: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, z := range zeros(v, "") {
			t.Errorf("%s: %s is zero", f, z)
		}
	}
}

// zeros lists the paths of zero numbers and "0s" durations in v, except
// the meaningful ones.
func zeros(v any, path string) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			out = append(out, zeros(e, path+"."+k)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, zeros(e, path+"[]")...)
		}
	case float64, string:
		if x != 0.0 && x != "0s" {
			return nil
		}
		field := path[strings.LastIndexByte(path, '.')+1:]
		if _, ok := meaningfulZeros[field]; !ok {
			out = append(out, path)
		}
	}
	return out
}

func TestZerosFindsUnresolvedDefaults(t *testing.T) {
	var v any
	json.Unmarshal([]byte(`{"listeners":[{"http":{"limits":{"idle_timeout":"0s","max_header_bytes":0}}}],"resources":{"upstreams":{"a":{"retries":0,"keepalive":32}}}}`), &v)
	got := strings.Join(zeros(v, ""), " ")
	for _, want := range []string{".listeners[].http.limits.idle_timeout", ".listeners[].http.limits.max_header_bytes"} {
		if !strings.Contains(got, want) {
			t.Errorf("zeros missed %s: %s", want, got)
		}
	}
	if strings.Contains(got, "retries") || strings.Contains(got, "keepalive") {
		t.Errorf("zeros reported a meaningful or non-zero value: %s", got)
	}
}
