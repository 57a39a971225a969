//! Fault injection: rules chosen by platform and operation, set by flags or through `/_admin/faults`,
//! and the connection plumbing that lets a handler drop its connection after committing a create.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// What a rule does.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Delay the answer (combines with other rules).
    Latency { ms: u64 },
    /// 401 in the platform's shape although the token is valid.
    Unauthorized,
    /// 429 with `Retry-After`.
    RateLimit { retry_after: u64 },
    /// An error status (500, 503, …) in the platform's shape.
    Status { status: u16 },
    /// Do the operation (store the job), then close the connection without answering.
    CommitThenDrop,
}

/// One rule. `platform`/`op` of `None` (or `*`) match everything; `times` of `None` never runs out.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FaultRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl FaultRule {
    fn matches(&self, platform: &str, op: &str) -> bool {
        let m =
            |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == "*" || w == got);
        m(&self.platform, platform) && m(&self.op, op) && self.times != Some(0)
    }

    /// Parses the flag form `PLATFORM:OP:KIND[=ARG][xTIMES]`, e.g. `runai:create:commit_then_drop`,
    /// `openpai:*:status=503x2`, `dai:get:latency=200`, `*:token:rate_limit=3`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = s.splitn(3, ':');
        let (Some(p), Some(o), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("fault {s:?}: want PLATFORM:OP:KIND[=ARG][xTIMES]"));
        };
        let (body, times) = match rest.rsplit_once('x') {
            Some((b, t)) if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) => {
                (b, Some(t.parse().map_err(|e| format!("{e}"))?))
            }
            _ => (rest, None),
        };
        let (kind, arg) = body
            .split_once('=')
            .map_or((body, None), |(k, a)| (k, Some(a)));
        let num = || {
            arg.ok_or(format!("fault {s:?}: {kind} needs =N"))?
                .parse::<u64>()
                .map_err(|e| format!("fault {s:?}: {e}"))
        };
        let kind = match kind {
            "latency" => FaultKind::Latency { ms: num()? },
            "unauthorized" => FaultKind::Unauthorized,
            "rate_limit" => FaultKind::RateLimit {
                retry_after: num()?,
            },
            "status" => FaultKind::Status {
                status: u16::try_from(num()?).map_err(|e| e.to_string())?,
            },
            "commit_then_drop" => FaultKind::CommitThenDrop,
            other => return Err(format!("fault {s:?}: unknown kind {other}")),
        };
        let any = |x: &str| (x != "*").then(|| x.to_string());
        Ok(FaultRule {
            platform: any(p),
            op: any(o),
            kind,
            times,
        })
    }
}

/// What applies to one request, after consuming matching rules.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    pub latency_ms: u64,
    /// A non-latency fault (the first matching one).
    pub fault: Option<FaultKind>,
}

/// Consumes the rules that match `platform`/`op`: all latencies add up, the first other fault wins.
pub fn decide(rules: &mut [FaultRule], platform: &str, op: &str) -> Decision {
    let mut d = Decision::default();
    for r in rules.iter_mut().filter(|r| r.matches(platform, op)) {
        let used = match &r.kind {
            FaultKind::Latency { ms } => {
                d.latency_ms += ms;
                true
            }
            // Commit-then-drop only makes sense for operations that change something.
            FaultKind::CommitThenDrop if matches!(op, "get" | "list" | "token") => false,
            other if d.fault.is_none() => {
                d.fault = Some(other.clone());
                true
            }
            _ => false,
        };
        if used && let Some(t) = r.times.as_mut() {
            *t -= 1;
        }
    }
    d
}

/// A TCP listener whose connections can be cut from inside a handler.
pub struct DropListener(pub TcpListener);

impl Listener for DropListener {
    type Io = DroppableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((inner, addr)) => {
                    return (
                        DroppableStream {
                            inner,
                            cut: Arc::new(AtomicBool::new(false)),
                        },
                        addr,
                    );
                }
                // Out of file descriptors and similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that fails every write once cut, so the pending response never leaves.
pub struct DroppableStream {
    inner: TcpStream,
    cut: Arc<AtomicBool>,
}

impl DroppableStream {
    fn check(&self) -> io::Result<()> {
        if self.cut.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "dropped by fault injection",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for DroppableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for DroppableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Handed to handlers (as connect info): cutting it drops the connection before the answer.
#[derive(Clone, Debug)]
pub struct ConnCut(Arc<AtomicBool>);

impl ConnCut {
    pub fn cut(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, DropListener>> for ConnCut {
    fn connect_info(stream: IncomingStream<'_, DropListener>) -> Self {
        ConnCut(stream.io().cut.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_flags() {
        let r = FaultRule::parse("openpai:*:status=503x2").unwrap();
        assert_eq!(
            r,
            FaultRule {
                platform: Some("openpai".into()),
                op: None,
                kind: FaultKind::Status { status: 503 },
                times: Some(2)
            }
        );
        let r = FaultRule::parse("*:create:commit_then_drop").unwrap();
        assert_eq!(
            (r.platform, r.op.as_deref(), r.kind),
            (None, Some("create"), FaultKind::CommitThenDrop)
        );
        assert_eq!(
            FaultRule::parse("dai:get:latency=200").unwrap().kind,
            FaultKind::Latency { ms: 200 }
        );
        assert!(FaultRule::parse("runai:create").is_err());
        assert!(FaultRule::parse("runai:create:explode").is_err());
        assert!(FaultRule::parse("runai:create:status").is_err());
    }

    #[test]
    fn decisions_consume_times() {
        let mut rules = vec![
            FaultRule::parse("runai:get:latency=5").unwrap(),
            FaultRule::parse("runai:*:status=500x1").unwrap(),
            FaultRule::parse("runai:get:unauthorized").unwrap(),
        ];
        assert_eq!(
            decide(&mut rules, "runai", "get"),
            Decision {
                latency_ms: 5,
                fault: Some(FaultKind::Status { status: 500 })
            }
        );
        assert_eq!(
            decide(&mut rules, "runai", "get"),
            Decision {
                latency_ms: 5,
                fault: Some(FaultKind::Unauthorized)
            }
        );
        assert_eq!(decide(&mut rules, "openpai", "get"), Decision::default());
        let mut drop_rule = vec![FaultRule::parse("*:*:commit_then_drop").unwrap()];
        assert_eq!(decide(&mut drop_rule, "dai", "get").fault, None);
        assert_eq!(
            decide(&mut drop_rule, "dai", "create").fault,
            Some(FaultKind::CommitThenDrop)
        );
    }
}
