// Package all links every ESP adapter into the binary: each adapter package registers
// itself in init, and importing this package is what makes them available.
package all

import (
	// Each adapter registers its ESP with ingest.Register.
	_ "github.com/reboundhq/rebound/internal/ingest/brevo"
	_ "github.com/reboundhq/rebound/internal/ingest/mailersend"
	_ "github.com/reboundhq/rebound/internal/ingest/mailgun"
	_ "github.com/reboundhq/rebound/internal/ingest/mailjet"
	_ "github.com/reboundhq/rebound/internal/ingest/mandrill"
	_ "github.com/reboundhq/rebound/internal/ingest/postmark"
	_ "github.com/reboundhq/rebound/internal/ingest/resend"
	_ "github.com/reboundhq/rebound/internal/ingest/sendgrid"
	_ "github.com/reboundhq/rebound/internal/ingest/ses"
	_ "github.com/reboundhq/rebound/internal/ingest/sparkpost"
)
