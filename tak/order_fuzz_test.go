package tak

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func addTakFuzzSeeds(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds %s: %v", pattern, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseOrder: parsing never panics, and neither does applying what parses
// to the seed catalog; a success always comes with a report, a failure never.
func FuzzParseOrder(f *testing.F) {
	addTakFuzzSeeds(f, "bestallning-test-*.json")
	seed := orderSeed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOrder(b)
		if err != nil {
			return
		}
		rep, errs, err := ApplyOrder(seed.Begin(), o, orderPlatform)
		if err != nil {
			return
		}
		if (rep == nil) == (len(errs) == 0) {
			t.Fatalf("report %v with errors %q", rep != nil, errs)
		}
		if rep != nil {
			_ = rep.String()
		}
	})
}

// FuzzImportTakdump: importing never panics, and whatever imports exports and
// re-imports to the same entities.
func FuzzImportTakdump(f *testing.F) {
	addTakFuzzSeeds(f, "tak-pubversion-export.json")
	addTakFuzzSeeds(f, "takdump_ntjp_test.EXCERPT-*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		tx := New().Begin()
		if _, err := ImportTakdump(tx, b); err != nil {
			return
		}
		c1 := tx.Commit(ChangeMeta{})
		out, err := ExportTakdump(c1, ExportMeta{Time: time.Unix(0, 0)})
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		tx2 := New().Begin()
		if _, err := ImportTakdump(tx2, out); err != nil {
			t.Fatalf("re-import: %v\n%s", err, out)
		}
		if g, w := takdumpEntities(tx2.Commit(ChangeMeta{})), takdumpEntities(c1); !reflect.DeepEqual(g, w) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v", g, w)
		}
	})
}
