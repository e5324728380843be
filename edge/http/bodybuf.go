package httpedge

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// BodyBufferBytes is how much of a request body is buffered in memory;
// the rest goes to a temporary file (nginx client_body_buffer_size, 16k
// there, then client_body_temp_path).
const BodyBufferBytes = 64 << 10

// bufferedBody is a request body read whole before it is sent upstream:
// its first BodyBufferBytes in memory, the rest in a temporary file that
// is unlinked as soon as it is created (nothing is left behind, whatever
// happens to the process). It can be read again from the start (rewind),
// so a request may be retried on another server.
type bufferedBody struct {
	mem      []byte
	file     *os.File
	fileSize int64
	size     int64
	r        io.Reader
}

// bufferBody reads src to its end. cl is the announced length (-1 unknown);
// src enforces the route's body limit and the body timeout (bodyReader), so
// what is buffered is bounded by max_body_bytes.
func (s *Server) bufferBody(src io.Reader, cl int64) (*bufferedBody, error) {
	bb := &bufferedBody{}
	var mem bytes.Buffer
	if cl > 0 {
		mem.Grow(int(min(cl, BodyBufferBytes)))
	}
	n, err := io.Copy(&mem, io.LimitReader(src, BodyBufferBytes))
	if err != nil {
		return nil, err
	}
	bb.mem, bb.size = mem.Bytes(), n
	if n == BodyBufferBytes {
		// Perhaps more: the rest goes to a file.
		var one [1]byte
		m, err := io.ReadFull(src, one[:])
		if err != nil && err != io.EOF {
			return nil, err
		}
		if m == 1 {
			if err := bb.spill(s.opts.BodyTempDir, one[:], src); err != nil {
				bb.Close()
				return nil, err
			}
		}
	}
	bb.rewind()
	return bb, nil
}

func (bb *bufferedBody) spill(dir string, first []byte, src io.Reader) error {
	f, err := os.CreateTemp(dir, "offedge-body-*")
	if err != nil {
		return fmt.Errorf("temporary file for a request body: %w", err)
	}
	os.Remove(f.Name())
	bb.file = f
	if _, err := f.Write(first); err != nil {
		return fmt.Errorf("writing a request body to %s: %w", f.Name(), err)
	}
	bp := copyBufPool.Get().(*[]byte)
	n, err := io.CopyBuffer(writerOnly{f}, src, *bp)
	copyBufPool.Put(bp)
	if err != nil {
		return err // the client's (the file's errors are rare)
	}
	bb.fileSize = n + int64(len(first))
	bb.size += bb.fileSize
	return nil
}

// rewind makes the next Read start at the body's first byte.
func (bb *bufferedBody) rewind() {
	if bb.file == nil {
		bb.r = bytes.NewReader(bb.mem)
		return
	}
	bb.r = io.MultiReader(bytes.NewReader(bb.mem), io.NewSectionReader(bb.file, 0, bb.fileSize))
}

func (bb *bufferedBody) Read(p []byte) (int, error) { return bb.r.Read(p) }

// Close releases the temporary file.
func (bb *bufferedBody) Close() error {
	if bb.file != nil {
		return bb.file.Close()
	}
	return nil
}
