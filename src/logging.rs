//! The process logger: env_logger (`RUST_LOG`, default `info`) in its text format, or one JSON
//! object per line with `JOBTOKEN_LOG_FORMAT=json`: `ts`, `level`, `target`, `msg`, then the
//! record's key-value fields (the access log's `request_id`, `method`, `route`, …).

use std::io::Write;

use log::kv::{Key, Value, VisitSource};

use crate::config::LogFormat;

/// The access log's target: one line per request (see `http::access`).
pub const ACCESS_TARGET: &str = "jobtoken::access";

/// Installs the logger once; a second call (tests, a library user's own logger) is a no-op.
pub fn init(format: LogFormat) {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let mut line = serde_json::Map::new();
            line.insert("ts".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into());
            line.insert("level".into(), record.level().as_str().into());
            line.insert("target".into(), record.target().into());
            line.insert("msg".into(), record.args().to_string().into());
            let _ = record.key_values().visit(&mut Fields(&mut line));
            writeln!(buf, "{}", serde_json::Value::Object(line))
        });
    }
    let _ = builder.try_init();
}

/// Copies a record's fields into the JSON line, numbers and booleans as such.
struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(x) = value.to_f64() {
            serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
        } else if let Some(b) = value.to_bool() {
            b.into()
        } else {
            value.to_string().into()
        };
        self.0.insert(key.as_str().to_owned(), json);
        Ok(())
    }
}
