package alloc

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestCacheDatadriven runs the scripts in testdata/cache. Commands (each prints its result and
// then the cache's state; rewrite the expectations with -rewrite):
//
//	cache pages=N [page=BYTES]        new cache of N pages (default page 4096 bytes)
//	alloc as=NAME                     take one page, keep its handle as NAME
//	free page=NAME                    free a handle taken with alloc
//	load model=ID pages=N [runs=(FIRST:PAGES, ...)] [as=NAME]
//	evict model=ID
//	pin model=ID | pin res=NAME       pin the current residency, or a kept one
//	unpin model=ID | unpin res=NAME
//	addrs model=ID                    the model's page addresses in layout order
func TestCacheDatadriven(t *testing.T) {
	datadriven.Walk(t, "testdata/cache", func(t *testing.T, path string) {
		var c *Cache
		pages := map[string]Page{}
		res := map[string]Residency{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "cache" && c == nil {
				d.Fatalf(t, "no cache yet")
			}
			var out string
			var err error
			residency := func() Residency {
				if d.HasArg("res") {
					var name string
					d.ScanArgs(t, "res", &name)
					r, ok := res[name]
					if !ok {
						d.Fatalf(t, "no residency %q", name)
					}
					return r
				}
				var id uint64
				d.ScanArgs(t, "model", &id)
				r, _ := c.Resident(ModelID(id))
				r.Model = ModelID(id)
				return r
			}
			switch d.Cmd {
			case "cache":
				var n int
				ps := int64(4096)
				d.ScanArgs(t, "pages", &n)
				d.MaybeScanArgs(t, "page", &ps)
				c, err = NewCache(CacheConfig{Base: 0x1000_0000, Size: int64(n) * ps, PageSize: ps})
			case "alloc":
				var name string
				d.ScanArgs(t, "as", &name)
				var p Page
				if p, err = c.Alloc(); err == nil {
					pages[name] = p
					a, _ := c.Addr(p)
					out = fmt.Sprintf("%s = %v at %#x\n", name, p, a)
				}
			case "free":
				var name string
				d.ScanArgs(t, "page", &name)
				err = c.Free(pages[name])
			case "load":
				var id uint64
				var n int
				d.ScanArgs(t, "model", &id)
				d.ScanArgs(t, "pages", &n)
				var runs []Run
				if a, ok := d.Arg("runs"); ok {
					for _, v := range a.Vals {
						f, p, _ := strings.Cut(v, ":")
						first, err1 := strconv.Atoi(f)
						k, err2 := strconv.Atoi(p)
						if err1 != nil || err2 != nil {
							d.Fatalf(t, "bad run %q", v)
						}
						runs = append(runs, Run{First: first, Pages: k})
					}
				}
				var r Residency
				if r, err = c.Load(ModelID(id), n, runs); err == nil && d.HasArg("as") {
					var name string
					d.ScanArgs(t, "as", &name)
					res[name] = r
				}
			case "evict":
				var id uint64
				d.ScanArgs(t, "model", &id)
				err = c.Evict(ModelID(id))
			case "pin":
				err = c.Pin(residency())
			case "unpin":
				err = c.Unpin(residency())
			case "addrs":
				var a []uint64
				if a, err = c.AppendAddrs(nil, residency()); err == nil {
					out = fmt.Sprintf("%#x\n", a)
				}
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			if err != nil {
				out = "error: " + err.Error() + "\n"
			}
			if c != nil {
				if cerr := c.Check(); cerr != nil {
					t.Fatalf("%s: %v\n%s", d.Pos, cerr, c)
				}
				out += c.String()
			}
			return out
		})
	})
}

// TestArenaDatadriven runs the scripts in testdata/arena. Commands:
//
//	arena size=BYTES [bufs=N]     new arena at base 0x100000
//	alloc bytes=N as=NAME
//	free buf=NAME
func TestArenaDatadriven(t *testing.T) {
	datadriven.Walk(t, "testdata/arena", func(t *testing.T, path string) {
		var a *Arena
		bufs := map[string]Buf{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var out string
			var err error
			switch d.Cmd {
			case "arena":
				var size int64
				n := 8
				d.ScanArgs(t, "size", &size)
				d.MaybeScanArgs(t, "bufs", &n)
				a, err = NewArena(ArenaConfig{Name: "test", Base: 0x100000, Size: size, MaxBufs: n})
			case "alloc":
				var n int64
				var name string
				d.ScanArgs(t, "bytes", &n)
				d.ScanArgs(t, "as", &name)
				var b Buf
				if b, err = a.Alloc(n); err == nil {
					bufs[name] = b
					out = fmt.Sprintf("%s = %v\n", name, b)
				}
			case "free":
				var name string
				d.ScanArgs(t, "buf", &name)
				err = a.Free(bufs[name])
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			if err != nil {
				out += "error: " + err.Error() + "\n"
			}
			if a != nil {
				if cerr := a.Check(); cerr != nil {
					t.Fatalf("%s: %v\n%s", d.Pos, cerr, a)
				}
				out += a.String()
			}
			return out
		})
	})
}
