// Command fixed-rate posts Spillway decisions at a fixed rate (open loop) and prints latency
// percentiles as one JSON line.
//
// Request i is due at start + i/rate whether or not earlier ones have been answered; its latency
// is measured from when it was due, not from when a connection was free to send it. This is the
// correction for coordinated omission that wrk2 applies (Gil Tene, "How NOT to measure latency"):
// a stalled server is charged for the requests it kept waiting. The service time (send to
// answer) is reported beside it. Each request has its own idempotency key; accounts rotate over
// -accounts ids "<account-prefix><n>". When the server cannot keep up, a request more than
// -max-late behind its due time is not sent but counted "missed" (its latency, a lower bound, is
// still in the percentiles), so the run ends soon after -duration instead of draining the queue.
//
// Only the standard library: `go build -o fixed-rate main.go`.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

type sample struct {
	latency time.Duration // from when the request was due (missed: until it was given up, a lower bound)
	service time.Duration // from when it was sent
	status  int           // 0: transport error; -1: missed (not sent: more than -max-late late)
}

type job struct {
	n   int
	due time.Time
}

func main() {
	url := flag.String("url", "http://127.0.0.1:3000/v1/decisions", "decision endpoint")
	rate := flag.Int("rate", 2000, "requests per second (1..100000)")
	duration := flag.Duration("duration", 30*time.Second, "how long to send")
	accounts := flag.Int("accounts", 64, "accounts to rotate over (1..100000)")
	accountPrefix := flag.String("account-prefix", "bench-", "account id prefix")
	feature := flag.String("feature", "bench.task", "feature key")
	keyPrefix := flag.String("key-prefix", fmt.Sprintf("fixed-%d", time.Now().UnixNano()), "idempotency key prefix (unique per run)")
	connections := flag.Int("connections", 128, "most requests in flight, one connection each (1..4096)")
	maxLate := flag.Duration("max-late", 10*time.Second, "a request not sent within this of when it was due is counted missed, not sent (bounds the run when the server cannot keep up)")
	flag.Parse()
	token := os.Getenv("SPILLWAY_BENCH_KEY")
	if token == "" || *rate < 1 || *rate > 100000 || *accounts < 1 || *accounts > 100000 || *connections < 1 || *connections > 4096 || *duration <= 0 || *duration > time.Hour {
		fmt.Fprintln(os.Stderr, "usage: SPILLWAY_BENCH_KEY=<decide key> fixed-rate -url URL -rate N -duration D (rate 1..100000, accounts 1..100000, connections 1..4096, duration ≤ 1h)")
		os.Exit(2)
	}

	if float64(*rate)*duration.Seconds() > 10_000_000 {
		fmt.Fprintln(os.Stderr, "rate × duration must stay within 10,000,000 requests (one pending slot each)")
		os.Exit(2)
	}
	transport := &http.Transport{MaxIdleConns: *connections, MaxIdleConnsPerHost: *connections, MaxConnsPerHost: *connections, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	total := int(duration.Seconds() * float64(*rate))
	jobs := make(chan job, total) // the scheduler never blocks: lateness shows up as latency
	results := make([][]sample, *connections)
	var wg sync.WaitGroup
	for w := 0; w < *connections; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := range jobs {
				if late := time.Since(j.due); late > *maxLate {
					results[w] = append(results[w], sample{latency: late, status: -1})
					continue
				}
				body := fmt.Sprintf(`{"account_id":"%s%d","feature":%q,"quantity":1,"idempotency_key":"%s-%d","allow_partial":true}`, *accountPrefix, j.n%*accounts, *feature, *keyPrefix, j.n)
				request, _ := http.NewRequest(http.MethodPost, *url, bytes.NewBufferString(body))
				request.Header.Set("content-type", "application/json")
				request.Header.Set("authorization", "Bearer "+token)
				sent := time.Now()
				status := 0
				if response, err := client.Do(request); err == nil {
					_, _ = io.Copy(io.Discard, response.Body)
					response.Body.Close()
					status = response.StatusCode
				}
				now := time.Now()
				results[w] = append(results[w], sample{latency: now.Sub(j.due), service: now.Sub(sent), status: status})
			}
		}(w)
	}

	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	for n := 0; n < total; {
		now := time.Now()
		for ; n < total && !start.Add(time.Duration(n)*interval).After(now); n++ {
			jobs <- job{n: n, due: start.Add(time.Duration(n) * interval)}
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)

	var all []sample
	for _, r := range results {
		all = append(all, r...)
	}
	ok, non2xx, failed, missed := 0, 0, 0, 0
	latencies := make([]time.Duration, 0, len(all))
	services := make([]time.Duration, 0, len(all))
	for _, s := range all {
		switch {
		case s.status == -1:
			missed++
			latencies = append(latencies, s.latency)
			continue
		case s.status == 0:
			failed++
		case s.status >= 200 && s.status < 300:
			ok++
		default:
			non2xx++
		}
		latencies = append(latencies, s.latency)
		services = append(services, s.service)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	sort.Slice(services, func(i, j int) bool { return services[i] < services[j] })
	pct := func(sorted []time.Duration, p float64) float64 {
		if len(sorted) == 0 {
			return 0
		}
		i := int(float64(len(sorted)) * p)
		if i >= len(sorted) {
			i = len(sorted) - 1
		}
		return float64(sorted[i].Microseconds()) / 1000
	}
	out := map[string]any{
		"target_rate":    *rate,
		"sent":           len(all) - missed,
		"missed":         missed,
		"ok":             ok,
		"non_2xx":        non2xx,
		"errors":         failed,
		"seconds":        elapsed.Seconds(),
		"achieved_rate":  float64(ok) / elapsed.Seconds(),
		"p50_ms":         pct(latencies, 0.50),
		"p90_ms":         pct(latencies, 0.90),
		"p99_ms":         pct(latencies, 0.99),
		"p999_ms":        pct(latencies, 0.999),
		"max_ms":         pct(latencies, 1),
		"service_p50_ms": pct(services, 0.50),
		"service_p99_ms": pct(services, 0.99),
	}
	encoded, _ := json.Marshal(out)
	fmt.Println(string(encoded))
}
