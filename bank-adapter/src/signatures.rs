//! Batches the proof-signature checks of concurrent calls: the first call to arrive leads, lets the calls already ready to run queue their signatures behind it, then verifies them together (Ed25519 batch verification) and hands out the verdicts, with no extra thread.

use std::sync::Mutex;

use consentnet_identity::{SignatureCheck, verify_all};
use tokio::sync::oneshot;

/// Beyond this many waiting signatures a call verifies its own at once.
pub const MAX_WAITING: usize = 256;

type Job = (SignatureCheck, oneshot::Sender<bool>);

/// Signatures waiting for a leader, and whether one is collecting them.
#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Job>,
    leading: bool,
}

/// Verifies proof signatures, batching those of calls that arrive together.
#[derive(Debug, Default)]
pub struct SignatureBatcher {
    queue: Mutex<Queue>,
}

impl SignatureBatcher {
    /// A batcher with nothing waiting.
    pub fn new() -> Self {
        Self::default()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        consentnet_identity::util::lock(&self.queue)
    }

    /// Verifies `check`: strictly when it is alone, in a batch when other calls' checks
    /// wait too.
    pub async fn verify(&self, check: SignatureCheck) -> bool {
        let (reply, verdict) = oneshot::channel();
        let lead = {
            let mut queue = self.queue();
            if queue.waiting.len() >= MAX_WAITING {
                drop(queue);
                return check.verify();
            }
            queue.waiting.push((check, reply));
            !std::mem::replace(&mut queue.leading, true)
        };
        if lead {
            let leader = Leader(self);
            // Calls that are ready to run now get to queue their signatures first.
            tokio::task::yield_now().await;
            // Dropping the leader verifies the batch, also when this call is cancelled
            // while it waits: nobody behind it is left without a verdict.
            drop(leader);
        }
        verdict.await.unwrap_or(false)
    }
}

/// The call collecting a batch; when it goes, the batch is verified.
struct Leader<'a>(&'a SignatureBatcher);

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let jobs = {
            let mut queue = self.0.queue();
            queue.leading = false;
            std::mem::take(&mut queue.waiting)
        };
        // One signature alone is cheaper to verify singly than as a batch of one.
        let verdicts = if jobs.len() == 1 {
            vec![jobs[0].0.verify()]
        } else {
            let checks: Vec<&SignatureCheck> = jobs.iter().map(|(check, _)| check).collect();
            verify_all(&checks)
        };
        for ((_, reply), verdict) in jobs.into_iter().zip(verdicts) {
            // The call may have gone (its client hung up): nothing to tell.
            let _ = reply.send(verdict);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use consentnet_identity::KeyPair;

    fn check(key: &KeyPair, message: &str, good: bool) -> SignatureCheck {
        let mut signature = key.sign(message.as_bytes()).to_vec();
        if !good {
            signature[5] ^= 1;
        }
        SignatureCheck {
            signer: key.public_key(),
            message: message.as_bytes().to_vec(),
            signature,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_checks_each_get_their_own_verdict() {
        let batcher = std::sync::Arc::new(SignatureBatcher::new());
        let key = KeyPair::generate();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (batcher, check) = (batcher.clone(), check(&key, &format!("m{i}"), i % 7 != 3));
                tokio::spawn(async move { (i, batcher.verify(check).await) })
            })
            .collect();
        for task in tasks {
            let (i, verdict) = task.await.unwrap();
            assert_eq!(verdict, i % 7 != 3, "call {i}");
        }
    }

    #[tokio::test]
    async fn a_cancelled_leader_still_verifies_the_calls_behind_it() {
        let batcher = std::sync::Arc::new(SignatureBatcher::new());
        let key = KeyPair::generate();
        // The leader is polled once (it queues and yields), then dropped.
        let mut leading = Box::pin(batcher.verify(check(&key, "lead", true)));
        assert!(futures_poll_once(leading.as_mut()).is_none());
        let behind = {
            let batcher = batcher.clone();
            let check = check(&key, "behind", true);
            tokio::spawn(async move { batcher.verify(check).await })
        };
        tokio::task::yield_now().await;
        drop(leading);
        assert!(behind.await.unwrap(), "the call behind got its verdict");
        // And the batcher leads again afterwards.
        assert!(batcher.verify(check(&key, "later", true)).await);
        assert!(!batcher.verify(check(&key, "bad", false)).await);
    }

    /// Polls a future once with a no-op waker.
    fn futures_poll_once<F: std::future::Future>(
        future: std::pin::Pin<&mut F>,
    ) -> Option<F::Output> {
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.poll(&mut context) {
            std::task::Poll::Ready(value) => Some(value),
            std::task::Poll::Pending => None,
        }
    }
}
