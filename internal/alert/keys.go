package alert

// keys builds every Redis key of the package. They all carry the configured prefix and
// the hash tag {a}, so any set of them can be touched by one script on Cluster.
type keys struct{ p string }

func newKeys(prefix string) keys { return keys{p: prefix + "alerts{a}:"} }

// incident is the hash of one incident: its fields, its transitions (t:<seq>) and the
// delivery state of each receiver (sent:<r>, next:<r>, tries:<r>, lease:<r>, …).
func (k keys) incident(fp string) string { return k.p + "inc:" + fp }

// seen is the sorted set of event IDs counted into the incident, scored by time: what
// makes a redelivered event count once.
func (k keys) seen(fp string) string { return k.p + "seen:" + fp }

// recipients is the HyperLogLog of the episode's distinct recipients (hashed).
func (k keys) recipients(fp string) string { return k.p + "rcpt:" + fp }

// domains is the sorted set of the episode's receiving domains by message count.
func (k keys) domains(fp string) string { return k.p + "dom:" + fp }

// index is every retained incident by last-seen time (ms): the listing.
func (k keys) index() string { return k.p + "index" }

// active is every incident not resolved, by last-seen time: what the resolve and
// reminder sweep reads.
func (k keys) active() string { return k.p + "active" }

// due is every incident with a notification to deliver, by when it is next due.
func (k keys) due() string { return k.p + "due" }
