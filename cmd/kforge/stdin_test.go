package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestCancelOnEOF(t *testing.T) {
	r, w := io.Pipe()
	ctx := cancelOnEOF(context.Background(), r)
	select {
	case <-ctx.Done():
		t.Fatal("ended while its input was open")
	case <-time.After(100 * time.Millisecond):
	}
	w.Close()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("did not end when its input closed")
	}
	if cause := context.Cause(ctx); cause == nil || !strings.Contains(cause.Error(), "standard input closed") {
		t.Errorf("cause %v", cause)
	}
}
