//! Push delivery of SETs (RFC 8935) to the endpoint an app registered in its manifest: a bounded queue, a bounded number of deliveries at once, retries with growing waits, and the event kept for polling until a delivery is taken (`202`).

use std::sync::Arc;
use std::time::Duration;

use consentnet_identity::Did;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::Notifications;

/// Deliveries waiting to start, at most; beyond it an event waits for polling only.
pub const PUSH_QUEUE: usize = 1_024;
/// Tries per delivery.
pub const PUSH_ATTEMPTS: u32 = 5;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 16;
/// How long one try may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The wait before the second try; it doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

struct Delivery {
    app: Did,
    uri: String,
    jti: String,
    set: String,
}

/// Hands SETs to the push task.
#[derive(Clone, Debug)]
pub struct Pusher {
    queue: mpsc::Sender<Delivery>,
}

/// The outcome of one try.
enum Tried {
    Taken,
    Refused(u16),
    Failed(String),
}

fn post(agent: &ureq::Agent, delivery: &Delivery) -> Tried {
    let sent = agent
        .post(&delivery.uri)
        .header("content-type", "application/secevent+jwt")
        .header("accept", "application/json")
        .send(delivery.set.as_str());
    match sent {
        Ok(response) if response.status().as_u16() == 202 => Tried::Taken,
        Ok(response) => Tried::Refused(response.status().as_u16()),
        Err(error) => Tried::Failed(error.to_string()),
    }
}

async fn deliver(agent: ureq::Agent, delivery: Delivery, notifications: Arc<Notifications>) {
    let delivery = Arc::new(delivery);
    let mut wait = FIRST_BACKOFF;
    for attempt in 1..=PUSH_ATTEMPTS {
        let (agent, sent) = (agent.clone(), delivery.clone());
        let tried = tokio::task::spawn_blocking(move || post(&agent, &sent))
            .await
            .unwrap_or_else(|e| Tried::Failed(e.to_string()));
        match tried {
            Tried::Taken => {
                notifications.delivered(&delivery.app, &delivery.jti);
                return;
            }
            // The receiver read it and said no (RFC 8935 section 2.3): trying again
            // would not change its mind; the event stays for polling.
            Tried::Refused(status) if (400..500).contains(&status) && status != 429 => {
                tracing::warn!(app = %delivery.app, status, "an app's event endpoint refused an event");
                return;
            }
            Tried::Refused(status) => {
                tracing::debug!(app = %delivery.app, status, attempt, "event push refused; retrying");
            }
            Tried::Failed(error) => {
                tracing::debug!(app = %delivery.app, %error, attempt, "event push failed; retrying");
            }
        }
        if attempt < PUSH_ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
    tracing::warn!(app = %delivery.app, "an event could not be pushed; it waits for polling");
}

impl Pusher {
    /// Starts the push task for `notifications`.
    pub fn start(notifications: Arc<Notifications>) -> (Self, JoinHandle<()>) {
        let (queue, mut waiting) = mpsc::channel::<Delivery>(PUSH_QUEUE);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .max_redirects(0)
            .tls_config(consentnet_bank_adapter::mapping::tls::TlsMaterial::default().config())
            .build()
            .new_agent();
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(IN_FLIGHT));
            while let Some(delivery) = waiting.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (agent, notifications) = (agent.clone(), notifications.clone());
                tokio::spawn(async move {
                    deliver(agent, delivery, notifications).await;
                    drop(slot);
                });
            }
        });
        (Self { queue }, task)
    }

    /// Queues the SET `set` (id `jti`) of `app` for its endpoint `uri`; false when the
    /// queue is full (the event then waits for polling only).
    pub fn push(&self, app: &Did, uri: &str, jti: &str, set: &str) -> bool {
        self.queue
            .try_send(Delivery {
                app: app.clone(),
                uri: uri.to_owned(),
                jti: jti.to_owned(),
                set: set.to_owned(),
            })
            .is_ok()
    }
}
