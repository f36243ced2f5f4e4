//! Prometheus metrics: tokens issued, denials by reason, request latency, the build, and the
//! process (`process_*`: CPU, memory, file descriptors, start time).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub tokens_issued: IntCounter,
    pub denials: IntCounterVec,
    pub authorization_details_refused: IntCounterVec,
    pub request_duration: HistogramVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let tokens_issued = IntCounter::new("jobtoken_tokens_issued_total", "Job tokens issued (minted or exchanged)")
            .expect("valid metric");
        let denials = IntCounterVec::new(
            Opts::new("jobtoken_denials_total", "Token requests and access decisions refused, by reason"),
            &["reason"],
        )
        .expect("valid metric");
        let authorization_details_refused = IntCounterVec::new(
            Opts::new(
                "jobtoken_authorization_details_refused_total",
                "Targets a job asked for that its token's authorization_details left out, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let request_duration = HistogramVec::new(
            HistogramOpts::new("jobtoken_http_request_duration_seconds", "HTTP request latency")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new("jobtoken_build_info", "The running build: always 1, labelled with its version and commit"),
            &["version", "commit"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), option_env!("JOBTOKEN_COMMIT").unwrap_or("unknown")])
            .set(1);
        for c in [
            Box::new(tokens_issued.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(denials.clone()),
            Box::new(authorization_details_refused.clone()),
            Box::new(request_duration.clone()),
            Box::new(build_info),
            // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, … (Linux).
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics { registry, tokens_issued, denials, authorization_details_refused, request_duration }
    }

    pub fn deny(&self, reason: &str) {
        self.denials.with_label_values(&[reason]).inc();
    }

    /// Counts one authorization_details entry left out of a token; `reason` is a
    /// [`crate::service::mint::DetailRefusal`] label.
    pub fn refuse_detail(&self, reason: &str) {
        self.authorization_details_refused.with_label_values(&[reason]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
