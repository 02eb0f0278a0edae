package rediscache_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The tests share one redis-server, started on first use on a free
// loopback port with its data in a temporary directory, and stopped by
// TestMain. Each test works under its own key prefix.
var testRedis struct {
	once sync.Once
	addr string
	cmd  *exec.Cmd
	dir  string
	skip string // why the tests cannot run, when they cannot
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testRedis.cmd != nil {
		testRedis.cmd.Process.Kill()
		testRedis.cmd.Wait()
	}
	if testRedis.dir != "" {
		os.RemoveAll(testRedis.dir)
	}
	os.Exit(code)
}

// redisAddr returns the address of the test redis-server. When Redis is
// not installed it installs Debian's redis-server with apt-get if the
// test runs as root; otherwise it skips the test, or fails it under
// SMTPTLS_REQUIRE_PEERS=1 (the project's CI sets it).
func redisAddr(t *testing.T) string {
	t.Helper()
	testRedis.once.Do(startRedis)
	if testRedis.skip != "" {
		if os.Getenv("SMTPTLS_REQUIRE_PEERS") == "1" {
			t.Fatalf("redis-server is required with SMTPTLS_REQUIRE_PEERS=1: %s", testRedis.skip)
		}
		t.Skip(testRedis.skip)
	}
	return testRedis.addr
}

func startRedis() {
	bin, err := exec.LookPath("redis-server")
	if err != nil && os.Geteuid() == 0 {
		if out, err := installRedis(); err != nil {
			testRedis.skip = fmt.Sprintf("redis-server missing and apt-get failed: %v: %s", err, out)
			return
		}
		bin, err = exec.LookPath("redis-server")
	}
	if err != nil {
		testRedis.skip = "redis-server is not installed (apt-get install redis-server, or run as root)"
		return
	}
	dir, err := os.MkdirTemp("", "rediscache-test-")
	if err != nil {
		testRedis.skip = err.Error()
		return
	}
	testRedis.dir = dir
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
			"--maxmemory-policy", "noeviction", "--logfile", "")
		if err := cmd.Start(); err != nil {
			lastErr = err
			continue
		}
		if err := waitPing(addr, cmd); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			lastErr = err
			continue
		}
		testRedis.addr, testRedis.cmd = addr, cmd
		return
	}
	testRedis.skip = fmt.Sprintf("cannot start redis-server: %v", lastErr)
}

func installRedis() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	update := exec.CommandContext(ctx, "apt-get", "update", "-qq")
	update.Env = env
	if out, err := update.CombinedOutput(); err != nil {
		return out, err
	}
	install := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "redis-server")
	install.Env = env
	return install.CombinedOutput()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitPing(addr string, cmd *exec.Cmd) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			return fmt.Errorf("no PING answer at %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newRedisClient returns a client of the test server, closed when the
// test ends: one per simulated MTA.
func newRedisClient(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: redisAddr(t)})
	t.Cleanup(func() { c.Close() })
	return c
}

// testPrefix is a key prefix of the test's own.
func testPrefix(t *testing.T) string {
	return "test:" + strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + ":"
}

// newDeadClient returns a client of an address where nothing listens.
func newDeadClient(t *testing.T) *redis.Client {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}
