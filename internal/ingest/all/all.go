// Package all is the list of ESP adapters the binary serves: one line per ESP, in
// the order their webhooks are listed. Adding an ESP is writing its package and
// adding its line here; nothing registers itself behind an import.
package all

import (
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/brevo"
	"github.com/reboundhq/rebound/internal/ingest/mailersend"
	"github.com/reboundhq/rebound/internal/ingest/mailgun"
	"github.com/reboundhq/rebound/internal/ingest/mailjet"
	"github.com/reboundhq/rebound/internal/ingest/mandrill"
	"github.com/reboundhq/rebound/internal/ingest/postmark"
	"github.com/reboundhq/rebound/internal/ingest/resend"
	"github.com/reboundhq/rebound/internal/ingest/sendgrid"
	"github.com/reboundhq/rebound/internal/ingest/ses"
	"github.com/reboundhq/rebound/internal/ingest/sparkpost"
)

// Entries are the ESPs with an adapter, by name; the name is the webhook's path
// (/webhooks/<name>) and the prefix of its settings (REBOUND_<NAME>_*).
func Entries() []ingest.Entry {
	return []ingest.Entry{
		{ESP: "brevo", New: brevo.New},
		{ESP: "mailersend", New: mailersend.New},
		{ESP: "mailgun", New: mailgun.New},
		{ESP: "mailjet", New: mailjet.New},
		{ESP: "mandrill", New: mandrill.New},
		{ESP: "postmark", New: postmark.New},
		{ESP: "resend", New: resend.New},
		{ESP: "sendgrid", New: sendgrid.New},
		{ESP: "ses", New: ses.New},
		{ESP: "sparkpost", New: sparkpost.New},
	}
}

// Adapters builds every listed adapter from env.
func Adapters(env ingest.Env) ([]ingest.Adapter, error) {
	return ingest.Adapters(env, Entries())
}
