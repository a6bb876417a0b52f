package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "STORE_CRASH_CHILD_DB"

// crashKey selects the journal key of the crash test's store: the head MAC
// must be on disk with every entry a kill leaves behind.
const crashKey = 7

// crashStep is one state change as the core would make it: session,
// journal, queue, nonce and counters in one transaction.
func crashStep(tx *Tx, i int64) error {
	id := fmt.Sprintf("s%06d", i)
	if err := tx.PutSession(id, []byte(`{"n":`+strconv.FormatInt(i, 10)+`}`)); err != nil {
		return err
	}
	if _, err := tx.AppendJournal(Entry{Kind: "STEP", SessionID: id, Text: "step " + strconv.FormatInt(i, 10)}); err != nil {
		return err
	}
	if _, err := tx.Enqueue("advice", id+"/advice", []byte(id)); err != nil {
		return err
	}
	if err := tx.UseNonce("nonce-" + id); err != nil {
		return err
	}
	if _, err := tx.NextSTAN(); err != nil {
		return err
	}
	if _, err := tx.AddDailyTotal("2025-01-01", 100); err != nil {
		return err
	}
	_, err := tx.AddCounter("steps", 1)
	return err
}

// runCrashChild is the child process: it commits steps forever, printing
// each committed step number from the AfterCommit hook, until killed.
func runCrashChild(path string) {
	db, err := Open(path, Options{JournalAuth: testAuth(crashKey), AfterCommit: func(label string) {
		fmt.Fprintln(os.Stdout, label) // unbuffered: printed only after the commit
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var next int64
	if err := db.View(func(tx *Tx) error {
		n, err := tx.Counter("steps")
		next = n + 1
		return err
	}); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	for i := next; i < next+1_000_000; i++ {
		if err := db.UpdateLabeled(strconv.FormatInt(i, 10), func(tx *Tx) error { return crashStep(tx, i) }); err != nil {
			fmt.Fprintln(os.Stderr, "child update:", err)
			os.Exit(2)
		}
	}
	os.Exit(3) // never reached in the test: the parent kills us first
}

// TestCrashKilledMidUpdates re-executes the test binary as a child that
// commits state changes in a loop, SIGKILLs it after it reported a number
// of commits, and checks the file opens, verifies and holds exactly a
// consistent prefix that includes every commit the child reported.
func TestCrashKilledMidUpdates(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		runCrashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := tempPath(t)
	var reported int64
	for round, killAfter := range []int{25, 40, 60} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKilledMidUpdates$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bufferedStderr
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Bound: if the child hangs, kill it so the test ends.
		watchdog := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
		sc := bufio.NewScanner(stdout)
		lines := 0
		for lines < killAfter && sc.Scan() {
			n, err := strconv.ParseInt(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			if n != reported+1 {
				t.Fatalf("child committed step %d after %d", n, reported)
			}
			reported = n
			lines++
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		watchdog.Stop()
		err = cmd.Wait()
		if lines < killAfter {
			t.Fatalf("round %d: child stopped after %d commits: %v\n%s", round, lines, err, stderr.String())
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die by SIGKILL: %v", round, err)
		}

		steps := checkConsistentPrefix(t, path)
		if steps < reported {
			t.Fatalf("round %d: file holds %d steps but the child reported %d committed", round, steps, reported)
		}
		t.Logf("round %d: killed after %d reported commits; file holds %d steps", round, reported, steps)
		reported = steps
	}
}

// checkConsistentPrefix opens the file and checks that steps 1..n are all
// fully present (and nothing beyond n is), where n is the steps counter,
// and that the journal verifies with its key (head MAC included).
func checkConsistentPrefix(t *testing.T, path string) int64 {
	t.Helper()
	db, err := Open(path, Options{JournalAuth: testAuth(crashKey)})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	if err := db.VerifyJournal(); err != nil {
		t.Fatalf("journal after kill: %v", err)
	}
	var n int64
	err = db.View(func(tx *Tx) error {
		if n, err = tx.Counter("steps"); err != nil {
			return err
		}
		sessions := int64(0)
		if err := tx.ForEachSession(func(id string, v []byte) error {
			sessions++
			if want := fmt.Sprintf("s%06d", sessions); id != want {
				return fmt.Errorf("session %q where %q expected", id, want)
			}
			return nil
		}); err != nil {
			return err
		}
		items, err := tx.QueueItems()
		if err != nil {
			return err
		}
		tail, err := tx.JournalTail(1)
		if err != nil {
			return err
		}
		var head uint64
		if len(tail) == 1 {
			head = tail[0].Seq
		}
		total, err := tx.DailyTotal("2025-01-01")
		if err != nil {
			return err
		}
		stan, _ := readU64(tx.tx.Bucket(bucketMeta).Get(keySTAN))
		nonces := int64(tx.tx.Bucket(bucketNonces).Stats().KeyN)
		if sessions != n || int64(len(items)) != n || int64(head) != n || total != 100*n || int64(stan) != n || nonces != n {
			return fmt.Errorf("inconsistent: steps=%d sessions=%d queue=%d journal=%d total=%d stan=%d nonces=%d",
				n, sessions, len(items), head, total, stan, nonces)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type bufferedStderr struct{ b []byte }

func (w *bufferedStderr) Write(p []byte) (int, error) {
	if len(w.b) < 4096 {
		w.b = append(w.b, p...)
	}
	return len(p), nil
}

func (w *bufferedStderr) String() string { return string(w.b) }
