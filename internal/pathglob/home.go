package pathglob

import (
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
)

// LookupFunc returns the home directory of a numeric user id, or false when
// the user is unknown.
type LookupFunc func(uid int64) (string, bool)

// SystemLookup looks the uid up in the user database (os/user).
func SystemLookup(uid int64) (string, bool) {
	if uid < 0 {
		return "", false
	}
	u, err := user.LookupId(strconv.FormatInt(uid, 10))
	if err != nil || u.HomeDir == "" {
		return "", false
	}
	h := Clean(u.HomeDir)
	return h, h != ""
}

// maxCachedHomes bounds the cache; a host has few users, so reaching it
// means garbage uids, and starting over is the cheapest defence.
const maxCachedHomes = 4096

// Homes caches uid → home directory. Reads are lock-free (a copy-on-write map
// behind an atomic pointer) because every scored file open asks; misses are
// rare and take a mutex. Unknown users are cached as "" (no "~" matching).
type Homes struct {
	lookup LookupFunc
	m      atomic.Pointer[map[int64]string]
	mu     sync.Mutex
}

// NewHomes returns a cache over lookup; nil means SystemLookup.
func NewHomes(lookup LookupFunc) *Homes {
	if lookup == nil {
		lookup = SystemLookup
	}
	h := &Homes{lookup: lookup}
	empty := map[int64]string{}
	h.m.Store(&empty)
	return h
}

// Home returns the home directory of uid, or "" when it is unknown.
func (h *Homes) Home(uid int64) string {
	if home, ok := (*h.m.Load())[uid]; ok {
		return home
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.m.Load()
	if home, ok := old[uid]; ok {
		return home
	}
	home, ok := h.lookup(uid)
	if !ok {
		home = ""
	}
	next := make(map[int64]string, len(old)+1)
	if len(old) < maxCachedHomes {
		for k, v := range old {
			next[k] = v
		}
	}
	next[uid] = home
	h.m.Store(&next)
	return home
}
