// Package config turns flags and REBOUND_* environment variables into one validated
// Config. Every error names the setting it is about, so that a bad deployment fails at
// start-up with a message an operator can act on. Secrets are read only from the
// environment or from files (…_FILE), never from flags, so they stay out of `ps`.
package config
