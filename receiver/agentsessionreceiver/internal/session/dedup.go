package session

import (
	"cmp"
	"slices"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// Folding repeated opens. An agent opens its own state files over and over
// (Claude Code: ~/.claude.json 19 times in one short session); one record
// per window with agent.file.open_count says the same. The first open of a
// (path, flags, result class) is held until the window ends, counting the
// repeats, and then recorded, timed at the first. An exec or exit of the
// process ends its windows first, so a record never carries another
// image's span. Opens of another path, other flags or another result class
// (success, or each error) are never folded together.

const (
	maxFoldsPerProc = 256   // windows open per process
	maxFolds        = 16384 // windows open in all
)

type openKey struct {
	path  string
	flags uint32
	class int32 // 0 for success (any fd), else the error
}

type heldOpen struct {
	p         *proc
	key       openKey
	at        uint64 // first open, boottime ns
	until     uint64
	ret       int32
	syscall   uint16
	truncated bool
	count     int
	done      bool
}

type dedupState struct {
	queue []*heldOpen // by until: the window is one length for all
	head  int
	live  int
}

// foldOpen counts e on a held record of the same open, or holds it as the
// first of a window. false: record it now (the tables are full).
func (t *Tracker) foldOpen(p *proc, e *kevent.Open, fp string) bool {
	k := openKey{path: fp, flags: e.OpenFlags}
	if e.Ret < 0 {
		k.class = e.Ret
	}
	if h := p.opens[k]; h != nil {
		h.count++
		t.st.opensFolded.Add(1)
		return true
	}
	if len(p.opens) >= maxFoldsPerProc || t.dedup.live >= maxFolds {
		t.st.opensUnfolded.Add(1)
		return false
	}
	if p.opens == nil {
		p.opens = map[openKey]*heldOpen{}
	}
	h := &heldOpen{p: p, key: k, at: e.Time, until: e.Time + uint64(t.cfg.DedupWindow), ret: e.Ret,
		syscall: e.Syscall, truncated: e.Header.Flags&kevent.FlagPathTruncated != 0, count: 1}
	p.opens[k] = h
	d := &t.dedup
	d.queue = append(d.queue, h)
	d.live++
	return true
}

func (t *Tracker) emitOpen(h *heldOpen) {
	h.done = true
	t.dedup.live--
	t.logOpen(h.p, h.at, h.key.path, h.key.flags, h.ret, h.syscall, h.truncated, h.count, nil)
}

// expireOpens records the held opens whose window ended by now.
func (t *Tracker) expireOpens(now uint64) {
	d := &t.dedup
	for d.head < len(d.queue) {
		h := d.queue[d.head]
		if !h.done {
			if h.until > now {
				break
			}
			delete(h.p.opens, h.key)
			t.emitOpen(h)
		}
		d.queue[d.head] = nil
		d.head++
	}
	if d.head == len(d.queue) {
		d.queue, d.head = d.queue[:0], 0
	} else if d.head > 1024 && d.head > len(d.queue)/2 {
		n := copy(d.queue, d.queue[d.head:])
		clear(d.queue[n:])
		d.queue, d.head = d.queue[:n], 0
	}
}

// releaseOpens records p's held opens now (exec, exit, shutdown).
func (t *Tracker) releaseOpens(p *proc) {
	if len(p.opens) == 0 {
		return
	}
	held := make([]*heldOpen, 0, len(p.opens))
	for _, h := range p.opens {
		held = append(held, h)
	}
	clear(p.opens)
	// In the order they were first seen.
	slices.SortFunc(held, func(a, b *heldOpen) int { return cmp.Compare(a.at, b.at) })
	for _, h := range held {
		t.emitOpen(h)
	}
}

// Drain records everything held for a later Flush: folded opens, and
// records waiting for their tool call. For a shutdown: call it, then Flush.
func (t *Tracker) Drain() {
	d := &t.dedup
	for i := d.head; i < len(d.queue); i++ {
		if h := d.queue[i]; h != nil && !h.done {
			delete(h.p.opens, h.key)
			t.emitOpen(h)
		}
	}
	d.queue, d.head = d.queue[:0], 0
	if t.in != nil {
		for _, s := range t.sessions {
			t.resolveWaiting(s, 0, true)
		}
	}
}
