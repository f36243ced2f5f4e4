//! Finishing a job, which revokes all its tokens at once (SPEC §5).

use crate::domain::{JobId, JobStatus, RunnerId};
use crate::store::jobs::{self, Job};
use crate::store::{Store, StoreError};

/// Who finishes a job: the admin, or the runner the job runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finisher {
    Admin,
    Runner(RunnerId),
}

/// Why a job was not finished.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("job {0} is not running on this runner")]
    OtherRunner(JobId),
    #[error("status must be success, failed or canceled")]
    NotAFinalStatus,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Finishes job `job_id` with `status` at `now`; a runner may finish only its own jobs.
pub async fn finish(
    store: &Store,
    finisher: Finisher,
    job_id: JobId,
    status: JobStatus,
    now: i64,
) -> Result<Job, FinishError> {
    if let Finisher::Runner(runner) = finisher {
        if store.read(move |c| jobs::job_runner(c, job_id)).await? != Some(runner) {
            return Err(FinishError::OtherRunner(job_id));
        }
    }
    if !status.is_finished() {
        return Err(FinishError::NotAFinalStatus);
    }
    Ok(store.run(move |c| jobs::finish(c, job_id, status, now)).await?)
}
