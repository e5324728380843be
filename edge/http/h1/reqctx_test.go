package h1

import (
	"context"
	"testing"
	"time"
)

type ctxKey struct{}

// A request context behaves as context.WithCancel's: values from its
// parent, Done closed and Err set on cancel, derived contexts and
// AfterFunc functions cancelled with it; its hook runs once, at once when
// it is set after the cancellation, and stops.
func TestRequestContext(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "conn")
	rc := &reqCtx{parent: parent}
	if rc.Value(ctxKey{}) != "conn" || rc.Err() != nil {
		t.Fatalf("value %v, err %v", rc.Value(ctxKey{}), rc.Err())
	}
	child, cancelChild := context.WithTimeout(rc, time.Minute)
	defer cancelChild()
	ran := make(chan struct{})
	context.AfterFunc(rc, func() { close(ran) })
	stopped := context.AfterFunc(rc, func() { t.Error("a stopped AfterFunc ran") })
	if !stopped() {
		t.Fatal("stopping an AfterFunc before the cancellation reported false")
	}
	hooked := 0
	if !rc.OnCancel(func() { hooked++ }) || rc.OnCancel(func() {}) {
		t.Fatal("OnCancel: the first hook must be taken, a second refused")
	}
	done := rc.Done()
	rc.cancel()
	rc.cancel()
	select {
	case <-done:
	default:
		t.Fatal("Done not closed")
	}
	<-child.Done() // derived contexts follow
	<-ran
	if rc.Err() != context.Canceled || hooked != 1 || rc.StopOnCancel() {
		t.Fatalf("err %v, hook ran %d times, StopOnCancel after the cancellation must be false", rc.Err(), hooked)
	}
	late := false
	rc.OnCancel(func() { late = true })
	if !late {
		t.Fatal("a hook set after the cancellation did not run at once")
	}
	rc2 := &reqCtx{parent: parent}
	rc2.OnCancel(func() { t.Error("a stopped hook ran") })
	if !rc2.StopOnCancel() {
		t.Fatal("StopOnCancel before the cancellation reported false")
	}
	rc2.cancel()
}
