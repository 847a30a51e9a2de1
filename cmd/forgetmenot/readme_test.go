package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

// The README runs as written. TestREADMERunsAsWritten reads README.md and
// carries out its marked steps in order, against the real binary on a
// private port with the embedded store, from the repository root:
//
//	```sh readme-test           a shell block, run with bash (-e, pipefail)
//	```sh readme-test daemon    a shell block that starts the daemon; it runs
//	                            in the background until the test ends, and the
//	                            test waits for /readyz
//	```json readme-output       (or text, …) right after a run block: the
//	                            shape its standard output must have
//	```text readme-log          a line the daemon's log must come to show
//	<!-- readme-test: chat "TEXT" -->
//	                            what the README asks a person to do in the
//	                            browser: write TEXT in the web chat (the test
//	                            opens a chat session as the widget does)
//
// The blocks run as a reader would type them: `go run ./cmd/forgetmenot`
// and `forgetmenot` run the binary built for the test, and `localhost:8080`
// in a curl command is the test daemon's private address.
//
// A shape is the text with these freedoms: runs of spaces count as one;
// message ids (M-…), dates (2026-11-23), clock times (10:58, 10:58:01) and
// the zone after a time (CET, UTC, +01) may be any of their kind; "…" in a
// line stands for any text, and a line that is only "…" for any lines.
// Everything else, complaint ids and owners included, must be as shown.
// Unmarked blocks are not run.
func TestREADMERunsAsWritten(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps, err := readmeSteps(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 5 {
		t.Fatalf("README.md has %d marked steps; the quick start alone has more", len(steps))
	}
	bin := buildOnce(t)
	port, err := testredis.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r := &readmeRun{t: t, bin: bin, addr: "127.0.0.1:" + strconv.Itoa(port)}
	defer r.stop()
	for i := 0; i < len(steps); i++ {
		st := steps[i]
		var expect *readmeStep
		if i+1 < len(steps) && steps[i+1].kind == "output" {
			expect = &steps[i+1]
			i++
		}
		t.Logf("README.md:%d: %s step", st.line, st.kind)
		switch st.kind {
		case "run":
			out := r.shell(st)
			if expect != nil {
				if err := matchShape(expect.body, out); err != nil {
					t.Fatalf("README.md:%d: the output of the block at line %d differs from what the README shows: %v\n--- got:\n%s", expect.line, st.line, err, out)
				}
			}
			r.waitRouted(out)
		case "daemon":
			r.daemon(st)
		case "log":
			r.waitLog(st)
		case "chat":
			r.chat(st)
		case "output":
			t.Fatalf("README.md:%d: a readme-output block must follow a run block", st.line)
		}
	}
	r.staffLinesReachedTheChats()
}

type readmeStep struct {
	kind string // run, daemon, output, log, chat
	body string
	line int
}

var chatComment = regexp.MustCompile(`^<!-- readme-test: chat (".*") -->$`)

// readmeSteps finds the marked steps of a README, in order.
func readmeSteps(readme string) ([]readmeStep, error) {
	var steps []readmeStep
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if m := chatComment.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			text, err := strconv.Unquote(m[1])
			if err != nil {
				return nil, fmt.Errorf("README.md:%d: chat text: %v", i+1, err)
			}
			steps = append(steps, readmeStep{kind: "chat", body: text, line: i + 1})
			continue
		}
		info, ok := strings.CutPrefix(l, "```")
		if !ok || info == "" {
			continue
		}
		start := i + 1
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("README.md:%d: block is not closed", start)
		}
		kind := ""
		switch f := strings.Fields(info); {
		case len(f) >= 2 && f[1] == "readme-test" && len(f) == 3 && f[2] == "daemon":
			kind = "daemon"
		case len(f) == 2 && f[1] == "readme-test":
			kind = "run"
		case len(f) == 2 && f[1] == "readme-output":
			kind = "output"
		case len(f) == 2 && f[1] == "readme-log":
			kind = "log"
		case strings.Contains(info, "readme-"):
			return nil, fmt.Errorf("README.md:%d: unknown marker %q", start, info)
		default:
			continue
		}
		steps = append(steps, readmeStep{kind: kind, body: strings.Join(body, "\n"), line: start})
	}
	return steps, nil
}

type readmeRun struct {
	t         *testing.T
	bin, addr string
	proc      *exec.Cmd
	logs      testkit.LockedBuffer
	chats     []*websocket.Conn
}

// prelude makes the README's commands reach the test's binary and daemon.
func (r *readmeRun) prelude() string {
	return `set -euo pipefail
go() { if [ "${1:-}" = run ] && [ "${2:-}" = ./cmd/forgetmenot ]; then shift 2; "$FMN_BIN" "$@"; else command go "$@"; fi; }
forgetmenot() { "$FMN_BIN" "$@"; }
curl() { local a=(); for x in "$@"; do x="${x//localhost:8080/$FMN_ADDR}"; a+=("${x//127.0.0.1:8080/$FMN_ADDR}"); done; command curl --max-time 10 "${a[@]}"; }
`
}

func (r *readmeRun) command(body string) *exec.Cmd {
	cmd := exec.Command("bash", "-c", r.prelude()+body)
	cmd.Dir = "../.."
	cmd.Env = append(cleanEnv(), "FMN_BIN="+r.bin, "FMN_ADDR="+r.addr, "FORGETMENOT_HTTP_ADDR="+r.addr, "USER=readme")
	return cmd
}

func (r *readmeRun) shell(st readmeStep) string {
	r.t.Helper()
	cmd := r.command(st.body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("README.md:%d: the block fails as written: %v\n%s\n--- stdout:\n%s--- stderr:\n%s--- daemon log:\n%s", st.line, err, st.body, stdout.String(), stderr.String(), r.logs.String())
	}
	return stdout.String()
}

func (r *readmeRun) daemon(st readmeStep) {
	r.t.Helper()
	if r.proc != nil {
		r.t.Fatalf("README.md:%d: a second daemon", st.line)
	}
	r.proc = r.command(st.body)
	r.proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.proc.Stdout, r.proc.Stderr = &r.logs, &r.logs
	if err := r.proc.Start(); err != nil {
		r.t.Fatal(err)
	}
	testkit.WaitFor(r.t, "the daemon of README.md:"+strconv.Itoa(st.line)+" to be ready", func() bool {
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
}

func (r *readmeRun) stop() {
	for _, c := range r.chats {
		c.CloseNow()
	}
	if r.proc != nil && r.proc.Process != nil {
		_ = syscall.Kill(-r.proc.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = r.proc.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-r.proc.Process.Pid, syscall.SIGKILL)
		}
	}
}

var messageIDs = regexp.MustCompile(`"message_id":\s*"(M-[0-9A-Z]+)"`)

// waitRouted waits until the messages a block sent are on their complaints,
// as a reader who waits a moment would see them.
func (r *readmeRun) waitRouted(out string) {
	r.t.Helper()
	for _, m := range messageIDs.FindAllStringSubmatch(out, -1) {
		r.waitMessage(m[1])
	}
}

func (r *readmeRun) waitMessage(id string) {
	r.t.Helper()
	testkit.WaitFor(r.t, "message "+id+" to be routed", func() bool {
		resp, err := http.Get("http://" + r.addr + "/v1/messages/" + id)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
}

func (r *readmeRun) waitLog(st readmeStep) {
	r.t.Helper()
	for _, want := range strings.Split(strings.TrimSpace(st.body), "\n") {
		re := shapeLine(want, false)
		deadline := time.Now().Add(10 * time.Second)
		for !logHas(r.logs.String(), re) {
			if time.Now().After(deadline) {
				r.t.Fatalf("README.md:%d: the daemon's log never showed\n%s\n--- log:\n%s", st.line, want, r.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func logHas(log string, re *regexp.Regexp) bool {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if re.MatchString(spaces.ReplaceAllString(sc.Text(), " ")) {
			return true
		}
	}
	return false
}

// chat writes a message in the web chat as the demo page's widget does, and
// keeps the session open (the page stays open) so replies arrive live.
func (r *readmeRun) chat(st readmeStep) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+r.addr+"/chat/ws", nil)
	if err != nil {
		r.t.Fatalf("README.md:%d: the web chat: %v", st.line, err)
	}
	r.chats = append(r.chats, c)
	send := func(v any) {
		b, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			r.t.Fatalf("README.md:%d: chat: %v", st.line, err)
		}
	}
	read := func(want string) map[string]any {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				r.t.Fatalf("README.md:%d: chat: waiting for %s: %v", st.line, want, err)
			}
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if m["type"] == want {
				return m
			}
		}
	}
	send(map[string]any{"type": "hello"})
	read("welcome")
	send(map[string]any{"type": "message", "id": "readme-" + strconv.Itoa(st.line), "text": st.body})
	ack := read("ack")
	id, _ := ack["message_id"].(string)
	if id == "" {
		r.t.Fatalf("README.md:%d: the chat did not take the message: %v", st.line, ack)
	}
	r.waitMessage(id)
}

var spaces = regexp.MustCompile(`\s+`)

// staffLinesReachedTheChats: the README says an answer appears in the chat;
// each chat session the README opened must have received a staff line.
func (r *readmeRun) staffLinesReachedTheChats() {
	r.t.Helper()
	for i, c := range r.chats {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				cancel()
				r.t.Fatalf("chat session %d never showed a staff answer: %v", i+1, err)
			}
			var f struct {
				Type string `json:"type"`
				Line struct {
					From string `json:"from"`
				} `json:"line"`
			}
			if json.Unmarshal(b, &f) == nil && f.Type == "line" && f.Line.From == "staff" {
				break
			}
		}
		cancel()
	}
}

// shapeLine turns one line of a README shape into a regular expression.
func shapeLine(line string, anchored bool) *regexp.Regexp {
	line = strings.TrimSpace(spaces.ReplaceAllString(line, " "))
	var b strings.Builder
	if anchored {
		b.WriteString("^")
	}
	for i, part := range strings.Split(line, "…") {
		if i > 0 {
			b.WriteString(".*")
		}
		b.WriteString(shapePart(part))
	}
	if anchored {
		b.WriteString("$")
	}
	return regexp.MustCompile(b.String())
}

// The volatile kinds, found in the shape's literal text and matched by kind.
var (
	ulid     = regexp.MustCompile(`\bM-[0-9A-Z]{26}\b`)
	dateRE   = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}\b`)
	clockRE  = regexp.MustCompile(`\b\d{2}:\d{2}(:\d{2})?( ([A-Z]{2,5}|[+-]\d{2,4})\b)?`)
	tokenAll = regexp.MustCompile(ulid.String() + "|" + dateRE.String() + "|" + clockRE.String())
)

func shapePart(s string) string {
	var b strings.Builder
	last := 0
	for _, loc := range tokenAll.FindAllStringIndex(s, -1) {
		b.WriteString(regexp.QuoteMeta(s[last:loc[0]]))
		tok := s[loc[0]:loc[1]]
		switch {
		case ulid.MatchString(tok):
			b.WriteString(`M-[0-9A-Z]{26}`)
		case dateRE.MatchString(tok):
			b.WriteString(`\d{4}-\d{2}-\d{2}`)
		default:
			m := clockRE.FindStringSubmatch(tok)
			b.WriteString(`\d{2}:\d{2}`)
			if m[1] != "" {
				b.WriteString(`:\d{2}`)
			}
			if m[2] != "" {
				b.WriteString(` (?:[A-Z]{2,5}|[+-]\d{2,4})`)
			}
		}
		last = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(s[last:]))
	return b.String()
}

// matchShape checks output line by line against a README shape.
func matchShape(shape, output string) error {
	want := strings.Split(strings.TrimRight(shape, "\n "), "\n")
	got := strings.Split(strings.TrimRight(output, "\n "), "\n")
	var match func(w, g int) error
	match = func(w, g int) error {
		if w == len(want) {
			if g == len(got) {
				return nil
			}
			return fmt.Errorf("more output than shown, from %q", got[g])
		}
		if strings.TrimSpace(want[w]) == "…" {
			for k := g; k <= len(got); k++ {
				if match(w+1, k) == nil {
					return nil
				}
			}
			return fmt.Errorf("nothing after %q matches the rest", want[w])
		}
		if g == len(got) {
			return fmt.Errorf("output ends before %q", want[w])
		}
		if !shapeLine(want[w], true).MatchString(strings.TrimSpace(spaces.ReplaceAllString(got[g], " "))) {
			return fmt.Errorf("line %d: got %q, README shows %q", g+1, got[g], want[w])
		}
		return match(w+1, g+1)
	}
	return match(0, 0)
}

// The shape check can fail: ids other than message ids, counts, owners and
// missing or extra lines are differences; dates, times, zones and "…" are not.
func TestREADMEShapes(t *testing.T) {
	shape := "C-1001  OPEN  owner anna\nOpened:    2026-11-23 10:58:01 CET\n…\nlast line (owner …)."
	for out, ok := range map[string]bool{
		"C-1001 OPEN owner anna\nOpened: 2027-01-02 00:00:00 UTC\nlast line (owner bas).":             true,
		"C-1001  OPEN  owner anna\nOpened:    2026-11-23 10:58:01 +01\nx\ny\nlast line (owner anna).": true,
		"C-1002  OPEN  owner anna\nOpened:    2026-11-23 10:58:01 CET\nlast line (owner anna).":       false,
		"C-1001  OPEN  owner bas\nOpened:    2026-11-23 10:58:01 CET\nlast line (owner anna).":        false,
		"C-1001  OPEN  owner anna\nOpened:    2026-11-23 10:58:01\nlast line (owner anna).":           false,
		"C-1001  OPEN  owner anna\nOpened:    2026-11-23 10:58:01 CET":                                false,
		"C-1001  OPEN  owner anna\nOpened:    2026-11-23 10:58:01 CET\nlast line (owner anna).\nmore": false,
	} {
		if err := matchShape(shape, out); (err == nil) != ok {
			t.Errorf("matchShape(%q): %v, want match %v", out, err, ok)
		}
	}
	if err := matchShape(`{"message_id":"M-01M840WG8DSY8W9VY3CRPAXY8B","duplicate":false}`, `{"message_id":"M-01M8T3CW5V9AGRN8ER6M24SDD0","duplicate":true}`); err == nil {
		t.Error("duplicate true passed for false")
	}
	steps, err := readmeSteps("x\n```sh readme-test\necho hi\n```\n```text readme-output\nhi\n```\n```sh\nnot run\n```\n<!-- readme-test: chat \"hallo\" -->\n")
	if err != nil || len(steps) != 3 || steps[0].kind != "run" || steps[0].body != "echo hi" || steps[1].kind != "output" || steps[2].kind != "chat" || steps[2].body != "hallo" {
		t.Errorf("readmeSteps: %+v %v", steps, err)
	}
	if _, err := readmeSteps("```sh readme-tset\nx\n```\n"); err == nil {
		t.Error("a misspelt marker must be an error, not a block silently not run")
	}
}
