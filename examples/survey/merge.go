package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/smtptls/smtptls/internal/quote"
)

// maxRecord bounds one line of a JSON Lines file read back (-resume,
// -merge): a record of maxMX hosts is a few kilobytes.
const maxRecord = 1 << 20

// readRecords calls fn with each record of a JSON Lines file and the
// offset just past it, reading it as a stream. A last line without its
// newline (a run cut short) is ignored; any other line that is not a
// survey record is an error naming it.
func readRecords(r io.Reader, name string, fn func(*Record, int64)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var off int64
	for n := 1; ; n++ {
		line, err := readLine(br, maxRecord)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", quote.Text(name), n, err)
		}
		off += int64(len(line))
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil || rec.Domain == "" {
			return fmt.Errorf("%s:%d: not a survey record", quote.Text(name), n)
		}
		fn(&rec, off)
	}
}

// readLine returns the next line with its newline, io.EOF at the end or
// before a last line without newline, or an error for a line longer than
// max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, fmt.Errorf("line longer than %d bytes", max)
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}

// merge aggregates JSON Lines files. A domain counts from the first file
// that has it, with every record that file has for it: the files of the
// shards of one list never share a domain, while a list that names a
// domain twice gives two records in one file, which one run would count
// twice too. The records counted are copied to out when it is set.
func merge(files []string, out string, agg *aggregator) (err error) {
	var w *bufio.Writer
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = bufio.NewWriter(f)
	}
	first := map[string]int{} // domain -> index of the first file that has it
	for i, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		var werr error
		err = readRecords(f, name, func(r *Record, _ int64) {
			if j, seen := first[r.Domain]; seen && j != i {
				return
			}
			first[r.Domain] = i
			agg.add(r)
			if w != nil && werr == nil {
				b, _ := json.Marshal(r)
				_, werr = w.Write(append(b, '\n'))
			}
		})
		f.Close()
		if err = errors.Join(err, werr); err != nil {
			return err
		}
	}
	if w != nil {
		return w.Flush()
	}
	return nil
}
