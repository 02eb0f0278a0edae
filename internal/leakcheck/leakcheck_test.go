package leakcheck

import (
	"testing"
	"time"
)

func TestLeaked(t *testing.T) {
	s := Take()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
	}()
	leaked := s.Leaked(50 * time.Millisecond)
	if len(leaked) != 1 {
		t.Fatalf("a blocked goroutine: %d leaks reported, want 1:\n%q", len(leaked), leaked)
	}
	close(stop)
	<-done
	if leaked := s.Leaked(5 * time.Second); len(leaked) != 0 {
		t.Fatalf("after the goroutine ended: %q", leaked)
	}
}

func TestLeakedWaitsForSlowExit(t *testing.T) {
	s := Take()
	go time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if leaked := s.Leaked(5 * time.Second); len(leaked) != 0 {
		t.Fatalf("a goroutine that ends by itself reported: %q", leaked)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Errorf("Leaked returned before the goroutine ended")
	}
}

func TestCheckPassesCleanTest(t *testing.T) {
	Check(t)
	done := make(chan struct{})
	go close(done)
	<-done
}
