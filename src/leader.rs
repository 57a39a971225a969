//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one replica reconciles (two
//! replicas submitting the same RemoteJob would break exactly-once).
//!
//! The algorithm is client-go's `leaderelection`: a candidate takes a Lease whose holder has not
//! renewed it for `lease_duration` *as measured by the candidate's own clock since it last saw the
//! record change* (so clock skew between replicas does not matter); the holder renews every
//! `retry_period` and gives up leadership when it has not renewed for `renew_deadline`, which is
//! shorter than `lease_duration`, so a cut-off leader stops before anyone else may start. On shutdown
//! the holder releases the Lease (empty holder), and a standby takes over within one `retry_period`.
//!
//! The decision is [`decide`], a pure function; [`join`] is the IO around it.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Where the Lease is and how the election is timed.
#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a Lease outlives its holder's last renewal: the fail-over time after a crash.
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long stops leading (must be < lease_duration).
    pub renew_deadline: Duration,
    /// How often candidates try and the leader renews.
    pub retry_period: Duration,
}

impl Config {
    /// client-go's and controller-runtime's defaults: 15 s / 10 s / 2 s.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Config {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What a candidate does with the Lease it just read.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, held by us.
    Create,
    /// Write ourselves as holder (a renewal when we hold it already, a take-over otherwise).
    Acquire { renewal: bool },
    /// Someone else holds a Lease that has not expired by our clock.
    Wait { holder: String },
}

/// The record as last seen and when it was seen to change (by the local monotonic clock).
#[derive(Debug, Clone)]
pub struct Observed {
    pub spec: Option<LeaseSpec>,
    pub changed_at: Instant,
}

/// Decides what to do with `lease` (None: it does not exist).
pub fn decide(lease: Option<&LeaseSpec>, observed: &Observed, now: Instant, me: &str) -> Decision {
    let Some(spec) = lease else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == me {
        return Decision::Acquire { renewal: true };
    }
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
    if !holder.is_empty() && observed.changed_at + duration > now {
        return Decision::Wait {
            holder: holder.into(),
        };
    }
    Decision::Acquire { renewal: false }
}

/// The Lease spec that makes `me` the holder, keeping the acquire time on a renewal.
pub fn held_by(old: Option<&LeaseSpec>, me: &str, cfg: &Config, renewal: bool) -> LeaseSpec {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let transitions = old.and_then(|s| s.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(me.into()),
        lease_duration_seconds: Some(cfg.lease_duration.as_secs() as i32),
        acquire_time: match renewal {
            true => old
                .and_then(|s| s.acquire_time.clone())
                .or(Some(now.clone())),
            false => Some(now.clone()),
        },
        renew_time: Some(now),
        lease_transitions: Some(if renewal || old.is_none() {
            transitions
        } else {
            transitions + 1
        }),
        ..Default::default()
    }
}

/// A running election. [`Leadership::release`] gives the Lease up before the process exits.
pub struct Leadership {
    rx: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Joins the election; the returned handle reports leadership as it changes.
pub fn join(client: kube::Client, cfg: Config) -> Leadership {
    assert!(cfg.renew_deadline < cfg.lease_duration && !cfg.retry_period.is_zero());
    let (tx, rx) = watch::channel(false);
    let (stop, stop_rx) = oneshot::channel();
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let task = tokio::spawn(elect(api, cfg, tx, stop_rx));
    Leadership {
        rx,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Leadership {
    /// Waits until this replica holds the Lease.
    pub async fn acquired(&mut self) {
        let _ = self.rx.wait_for(|leader| *leader).await;
    }

    /// Waits until leadership is lost (renew deadline passed, or the election ended).
    pub async fn lost(&mut self) {
        let _ = self.rx.wait_for(|leader| !*leader).await;
    }

    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// A receiver of leadership changes (for metrics and logs).
    pub fn changes(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Stops the election and, if this replica leads, releases the Lease so a standby takes over at
    /// its next try instead of after the Lease expires. Bounded: gives up after 5 s.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // Not released explicitly: the task still releases the Lease if the runtime lives on.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn elect(
    api: Api<Lease>,
    cfg: Config,
    tx: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut observed = Observed {
        spec: None,
        changed_at: Instant::now(),
    };
    let mut last_renewal: Option<Instant> = None;
    loop {
        let attempt_budget = match last_renewal {
            Some(at) => cfg.renew_deadline.saturating_sub(at.elapsed()),
            None => cfg.renew_deadline,
        };
        // A renewal counts from when it was sent: the Lease was written at or before the answer, and
        // a standby counts the Lease's time from when it saw that write.
        let sent = Instant::now();
        let attempt = tokio::time::timeout(attempt_budget, try_acquire(&api, &cfg, &mut observed));
        let outcome = tokio::select! {
            o = attempt => o,
            _ = &mut stop => break,
        };
        match outcome {
            Ok(Ok(true)) => last_renewal = Some(sent),
            Ok(Ok(false)) => last_renewal = None,
            // Another candidate wrote first (409): it leads, we read again next round.
            Ok(Err(kube::Error::Api(e))) if e.code == 409 => last_renewal = None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, lease = %cfg.name, "leader election: Lease update failed")
            }
            Err(_) => tracing::warn!(lease = %cfg.name, "leader election: Lease update timed out"),
        }
        let leading = last_renewal.is_some_and(|at| at.elapsed() < cfg.renew_deadline);
        if !leading {
            last_renewal = None;
        }
        tx.send_if_modified(|was| std::mem::replace(was, leading) != leading);
        // A leader wakes no later than its renew deadline, so that it notices a missed one in time.
        let pause = match last_renewal {
            Some(at) => cfg
                .retry_period
                .min(cfg.renew_deadline.saturating_sub(at.elapsed())),
            None => cfg.retry_period,
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = &mut stop => break,
        }
    }
    if last_renewal.is_some() {
        tx.send_replace(false);
        match release(&api, &cfg).await {
            Ok(()) => tracing::info!(lease = %cfg.name, "released the leader Lease"),
            Err(e) => {
                tracing::warn!(error = %e, lease = %cfg.name, "releasing the leader Lease failed")
            }
        }
    }
}

/// One round: read the Lease, decide, write. `Ok(true)` when we hold it afterwards.
async fn try_acquire(
    api: &Api<Lease>,
    cfg: &Config,
    observed: &mut Observed,
) -> kube::Result<bool> {
    let lease = api.get_opt(&cfg.name).await?;
    let spec = lease.as_ref().and_then(|l| l.spec.clone());
    if spec != observed.spec {
        *observed = Observed {
            spec: spec.clone(),
            changed_at: Instant::now(),
        };
    }
    match (
        decide(spec.as_ref(), observed, Instant::now(), &cfg.identity),
        lease,
    ) {
        (Decision::Wait { .. }, _) => Ok(false),
        (Decision::Create, _) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    ..Default::default()
                },
                spec: Some(held_by(None, &cfg.identity, cfg, false)),
            };
            api.create(&PostParams::default(), &lease).await?;
            Ok(true)
        }
        (Decision::Acquire { renewal }, Some(mut lease)) => {
            // replace() carries the resourceVersion we read: a concurrent writer makes this a 409.
            lease.spec = Some(held_by(spec.as_ref(), &cfg.identity, cfg, renewal));
            let written = api
                .replace(&cfg.name, &PostParams::default(), &lease)
                .await?;
            *observed = Observed {
                spec: written.spec,
                changed_at: Instant::now(),
            };
            Ok(true)
        }
        (Decision::Acquire { .. }, None) => Ok(false),
    }
}

/// Empties the holder if it is still us, as client-go does on a graceful stop.
async fn release(api: &Api<Lease>, cfg: &Config) -> kube::Result<()> {
    let Some(mut lease) = api.get_opt(&cfg.name).await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    if spec.holder_identity.as_deref() != Some(cfg.identity.as_str()) {
        return Ok(());
    }
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(now.clone());
    spec.acquire_time = Some(now);
    api.replace(&cfg.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, secs: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: (!holder.is_empty()).then(|| holder.to_string()),
            lease_duration_seconds: Some(secs),
            ..Default::default()
        }
    }

    #[test]
    fn decisions() {
        let t0 = Instant::now();
        let seen = |s: Option<LeaseSpec>, ago: u64| Observed {
            spec: s,
            changed_at: t0 - Duration::from_secs(ago),
        };
        let cases: Vec<(&str, Option<LeaseSpec>, u64, Decision)> = vec![
            ("no lease", None, 0, Decision::Create),
            (
                "ours",
                Some(spec("me", 15)),
                100,
                Decision::Acquire { renewal: true },
            ),
            (
                "other, fresh",
                Some(spec("other", 15)),
                3,
                Decision::Wait {
                    holder: "other".into(),
                },
            ),
            (
                "other, just under the duration",
                Some(spec("other", 15)),
                14,
                Decision::Wait {
                    holder: "other".into(),
                },
            ),
            (
                "other, expired by our clock",
                Some(spec("other", 15)),
                16,
                Decision::Acquire { renewal: false },
            ),
            (
                "released (empty holder)",
                Some(spec("", 1)),
                0,
                Decision::Acquire { renewal: false },
            ),
        ];
        for (what, lease, ago, want) in cases {
            let observed = seen(lease.clone(), ago);
            assert_eq!(decide(lease.as_ref(), &observed, t0, "me"), want, "{what}");
        }
    }

    #[test]
    fn a_take_over_counts_a_transition_and_a_renewal_keeps_the_acquire_time() {
        let cfg = Config::new("ns", "l", "me");
        let mut old = spec("other", 15);
        old.lease_transitions = Some(4);
        let taken = held_by(Some(&old), "me", &cfg, false);
        assert_eq!(taken.lease_transitions, Some(5));
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        assert_eq!(taken.lease_duration_seconds, Some(15));
        let renewed = held_by(Some(&taken), "me", &cfg, true);
        assert_eq!(renewed.lease_transitions, Some(5));
        assert_eq!(renewed.acquire_time, taken.acquire_time);
        assert_eq!(held_by(None, "me", &cfg, false).lease_transitions, Some(0));
    }
}
