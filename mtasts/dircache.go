package mtasts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DirCache is a Cache that keeps one file per entry in a directory, like
// golang.org/x/crypto/acme/autocert's DirCache. The directory is created
// with mode 0700 on the first Put; files have mode 0600.
//
// Writes are atomic and durable: Put writes a temporary file in the same
// directory, fsyncs it, renames it over the entry and fsyncs the directory,
// so a crash (or SIGKILL, or power loss on a file system that honours
// fsync) leaves either the old entry or the new one, never a torn one.
// Temporary files a crash leaves behind start with "." and are ignored;
// Keys removes those older than an hour.
//
// Keys are sanitised into file names: letters a-z, digits, "-" and "."
// (except as the first character) are kept, every other byte becomes %XX,
// so no key can name a path outside the directory, a hidden file or a
// different-case twin. A key whose file name would exceed 255 bytes is
// refused. Entries larger than 64 KiB plus a small header are refused on
// read and write.
//
// Several processes may share one DirCache directory.
type DirCache string

var _ Lister = DirCache("")

// Get implements Cache.
func (d DirCache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrCacheMiss
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEntrySize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxEntrySize {
		return nil, fmt.Errorf("mtasts: cache file %s larger than %d bytes", name, maxEntrySize)
	}
	return data, nil
}

// Put implements Cache.
func (d DirCache) Put(ctx context.Context, key string, data []byte) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(data) > maxEntrySize {
		return errors.New("mtasts: cache entry too large")
	}
	name, err := d.path(key)
	if err != nil {
		return err
	}
	if err := d.mkdir(); err != nil {
		return err
	}
	// os.CreateTemp creates the file with mode 0600.
	tmp, err := os.CreateTemp(string(d), ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	// The rename is durable only once the directory is synced.
	return syncDir(string(d))
}

// mkdir creates the directory (and missing parents) with mode 0700 and
// makes the new directory entries durable: without a sync of each new
// directory's parent, a crash could lose the whole cache directory along
// with the entries whose own writes were synced.
func (d DirCache) mkdir() error {
	dir := filepath.Clean(string(d))
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	var created []string
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || filepath.Dir(p) == p {
			break
		}
		created = append(created, p)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, p := range created {
		if err := syncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// syncDir fsyncs a directory, making the entries created, renamed or
// removed in it durable.
func syncDir(name string) error {
	dir, err := os.Open(name)
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// Delete implements Cache.
func (d DirCache) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Keys implements Lister. It also removes temporary files older than an
// hour, which only a crash mid-Put leaves behind.
func (d DirCache) Keys(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	des, err := os.ReadDir(string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, de := range des {
		n := de.Name()
		if strings.HasPrefix(n, ".tmp-") {
			if info, err := de.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				os.Remove(filepath.Join(string(d), n))
			}
			continue
		}
		if !de.Type().IsRegular() {
			continue
		}
		if k, ok := unescapeKey(n); ok {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func (d DirCache) path(key string) (string, error) {
	if d == "" {
		return "", errors.New("mtasts: DirCache has no directory")
	}
	n := escapeKey(key)
	if len(n) > 255 {
		return "", errors.New("mtasts: cache key too long")
	}
	return filepath.Join(string(d), n), nil
}

// escapeKey maps a key to a file name that is a single path element,
// never starts with "." and never differs from another key's only by case.
func escapeKey(key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' && i > 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	if b.Len() == 0 {
		return "%" // the empty key; "%" alone is never produced otherwise
	}
	return b.String()
}

// unescapeKey inverts escapeKey; ok is false for names escapeKey never
// produces.
func unescapeKey(name string) (string, bool) {
	if name == "%" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(name) {
			return "", false
		}
		var v byte
		for _, h := range []byte{name[i+1], name[i+2]} {
			switch {
			case h >= '0' && h <= '9':
				v = v<<4 | (h - '0')
			case h >= 'A' && h <= 'F':
				v = v<<4 | (h - 'A' + 10)
			default:
				return "", false
			}
		}
		b.WriteByte(v)
		i += 2
	}
	k := b.String()
	return k, escapeKey(k) == name
}
