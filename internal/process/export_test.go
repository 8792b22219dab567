package process

// ConsumeError lets the external tests report a client error as nats.go would: the
// errors of a live consumer cannot be provoked on demand from a test.
func (p *Processor) ConsumeError(err error) { p.consumeError(err) }

// RedisUnavailable exposes the pause decision to the external tests.
var RedisUnavailable = redisUnavailable
