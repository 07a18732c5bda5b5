package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/sources/file"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ctxT returns a context that ends with the test or after a generous timeout,
// to bound every wait for an event.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newSource(t *testing.T, opts ...file.Option) *file.Source {
	t.Helper()
	src, err := file.New(opts...)
	if err != nil {
		t.Fatalf("file.New: %v", err)
	}
	return src
}

// writeAtomic replaces dir/name with value the way careful writers do: write
// a temporary file in the same directory, then rename it over the old one.
func writeAtomic(dir, name, value string) error {
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(name)+"-")
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}

func mustWrite(t *testing.T, dir, name, value string) {
	t.Helper()
	if err := writeAtomic(dir, name, value); err != nil {
		t.Fatalf("writing %s: %v", name, err)
	}
}

// volume is a directory laid out as kubelet's AtomicWriter lays out a secret
// volume (the Secrets Store CSI driver does the same):
//
//	..2026_11_22_02_20_01.000000001/password   the files of one version
//	..data -> ..2026_11_22_02_20_01.000000001  the current version
//	password -> ..data/password                what the application sees
//
// publish writes a new timestamped directory, points a "..data_tmp" link at
// it, renames that link over "..data", adds the visible links of new names,
// removes those of names gone, and removes the old timestamped directory, in
// AtomicWriter's order.
type volume struct {
	dir   string
	n     int
	ts    string // current timestamped directory; "" before the first publish
	files map[string]string
}

func newVolume(t *testing.T, files map[string]string) *volume {
	t.Helper()
	v := &volume{dir: t.TempDir(), files: map[string]string{}}
	if err := v.publish(files); err != nil {
		t.Fatalf("publishing the volume: %v", err)
	}
	return v
}

func (v *volume) publish(files map[string]string) error {
	v.n++
	ts := fmt.Sprintf("..2026_11_22_02_20_%02d.%09d", v.n%60, v.n)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		return err
	}
	for name, value := range files {
		p := filepath.Join(v.dir, ts, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return err
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		return err
	}
	visible := func(m map[string]string) map[string]bool {
		out := map[string]bool{}
		for name := range m {
			out[strings.SplitN(name, "/", 2)[0]] = true
		}
		return out
	}
	newNames, oldNames := visible(files), visible(v.files)
	for _, name := range sortedKeys(newNames) {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(oldNames) {
		if !newNames[name] {
			if err := os.Remove(filepath.Join(v.dir, name)); err != nil {
				return err
			}
		}
	}
	if v.ts != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.ts)); err != nil {
			return err
		}
	}
	v.ts = ts
	v.files = map[string]string{}
	for k, val := range files {
		v.files[k] = val
	}
	return nil
}

// with returns the volume's files with name set to value.
func (v *volume) with(name, value string) map[string]string {
	out := map[string]string{name: value}
	for k, val := range v.files {
		if k != name {
			out[k] = val
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// watchSpy is the Source as a Store sees it, with the notices of its Watch
// copied to calls (dropped when calls is full: the callback never blocks).
type watchSpy struct {
	*file.Source
	calls chan string
}

func (w *watchSpy) Watch(ctx context.Context, changed func(string)) error {
	return w.Source.Watch(ctx, func(key string) {
		changed(key)
		select {
		case w.calls <- key:
		default:
		}
	})
}

// runWatch runs src.Watch until the test ends and returns the channel of its
// notices.
func runWatch(t *testing.T, src *file.Source) <-chan string {
	t.Helper()
	calls := make(chan string, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Watch(ctx, func(key string) {
			select {
			case calls <- key:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v", err)
		}
	})
	return calls
}

// waitKey waits until calls delivers key.
func waitKey(t *testing.T, ctx context.Context, calls <-chan string, key string) {
	t.Helper()
	for {
		select {
		case k := <-calls:
			if k == key {
				return
			}
		case <-ctx.Done():
			t.Fatalf("waiting for changed(%q): %v", key, ctx.Err())
		}
	}
}

// drain discards the notices already queued.
func drain(calls <-chan string) {
	for {
		select {
		case <-calls:
		default:
			return
		}
	}
}
