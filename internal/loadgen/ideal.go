package loadgen

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/events"
)

// idealScript is the ideal worker's Redis step for one event: five writes, and nothing
// after the first when the event was seen before (the dedup any at-least-once worker
// needs).
var idealScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'type', ARGV[2], 'at', ARGV[3])
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], 0, 19)
redis.call('PEXPIRE', KEYS[3], ARGV[1])
return 1`)

// runIdeal drains count messages from the consumer the way the cheapest correct
// worker would: Consume with the process role's prefetch and batches in flight, decode
// each event, one pipelined round trip of idealScript per batch, then an explicit ack
// per message. No classification, policy, guard, metrics or logging.
// onAck, if set, learns each acknowledged event's ID.
func runIdeal(ctx context.Context, js jetstream.JetStream, rdb *redis.Client, names events.Names, consumer, prefix string, opt Options, count int, onAck func(id string)) error {
	cons, err := js.Consumer(ctx, names.Stream, consumer)
	if err != nil {
		return fmt.Errorf("ideal consumer: %w", err)
	}
	if err := idealScript.Load(ctx, rdb).Err(); err != nil {
		return fmt.Errorf("load ideal script: %w", err)
	}
	workers := opt.Concurrency
	msgs := make(chan jetstream.Msg, (workers+1)*opt.BatchSize)
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m }, jetstream.PullMaxMessages((workers+1)*opt.BatchSize))
	if err != nil {
		return fmt.Errorf("ideal consume: %w", err)
	}
	var (
		acked    atomic.Int64
		errMu    sync.Mutex
		firstErr error
		done     = make(chan struct{})
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	ttl := strconv.FormatInt((7 * 24 * time.Hour).Milliseconds(), 10)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]jetstream.Msg, 0, opt.BatchSize)
			var ids []string
			for {
				select {
				case m := <-msgs:
					batch = append(batch[:0], m)
				case <-done:
					return
				}
			fill:
				for len(batch) < opt.BatchSize {
					select {
					case m := <-msgs:
						batch = append(batch, m)
					default:
						break fill
					}
				}
				pipe := rdb.Pipeline()
				now := strconv.FormatInt(time.Now().UnixMilli(), 10)
				ids = ids[:0]
				for _, m := range batch {
					ev, err := events.Decode(m.Data())
					if err != nil {
						fail(err)
						continue
					}
					ids = append(ids, ev.ID)
					rk := prefix + ev.Tenant + ":" + ev.Recipient
					idealScript.EvalSha(ctx, pipe, []string{prefix + "dedup:" + ev.ID, prefix + "rec:" + rk, prefix + "log:" + rk},
						ttl, string(ev.Type), now, ev.ID+"|"+ev.Reply.Text)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					fail(err)
					continue // redelivered after AckWait
				}
				for _, m := range batch {
					_ = m.Ack()
				}
				if onAck != nil {
					for _, id := range ids {
						onAck(id)
					}
				}
				if acked.Add(int64(len(batch))) >= int64(count) {
					select {
					case <-done:
					default:
						close(done)
					}
				}
			}
		}()
	}
	var last int64
	since := time.Now()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var result error
wait:
	for {
		select {
		case <-done:
			break wait
		case <-ctx.Done():
			result = ctx.Err()
			break wait
		case <-t.C:
		}
		errMu.Lock()
		err := firstErr
		errMu.Unlock()
		if err != nil {
			result = fmt.Errorf("ideal worker: %w", err)
			break wait
		}
		if a := acked.Load(); a != last {
			last, since = a, time.Now()
		} else if time.Since(since) > time.Minute {
			result = fmt.Errorf("ideal worker acknowledged nothing for a minute (%d of %d)", a, count)
			break wait
		}
	}
	cc.Stop()
	select {
	case <-done:
	default:
		close(done)
	}
	// Let the callback finish a blocked hand-off so the consumer can close.
	go func() {
		for range msgs {
		}
	}()
	wg.Wait()
	<-cc.Closed()
	close(msgs)
	return result
}
