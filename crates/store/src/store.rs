//! The one trait of the crate: what the service layer needs from a store.
//!
//! Object-safe through `async_trait`, so the service holds an
//! `Arc<dyn FaceStore>` and does not care which database sits behind it. Both
//! implementations pass the same contract tests (`tests/common/contract.rs`).

use async_trait::async_trait;

use crate::access::AccessStore;
use crate::error::Result;
use crate::types::{
    Match, ModelKey, NewTemplate, NewUser, Page, Stats, TemplateId, TemplateInfo, User,
    UserDistance, UserId,
};

/// A repository of enrolled users and their face templates, and (through
/// the [`AccessStore`] supertrait) of the security layer's state.
#[async_trait]
pub trait FaceStore: AccessStore + Send + Sync {
    /// Creates a user together with at least one template of `model`,
    /// atomically: either all rows are stored or none. Registers `model` on
    /// first use (`Conflict` if its id is known with another dimension/metric).
    async fn create_user(
        &self,
        user: NewUser,
        model: &ModelKey,
        templates: &[NewTemplate],
    ) -> Result<User>;

    /// [`FaceStore::create_user`], refused with `Duplicate` when a template
    /// is closer than `unique_below` (the model's metric) to any template of
    /// an existing user. The check and the insert are one step: concurrent
    /// creations of one model are serialised around them (SQLite: the
    /// writer; PostgreSQL: an advisory lock per model), so two enrolments
    /// of one face cannot both pass.
    async fn create_unique_user(
        &self,
        user: NewUser,
        model: &ModelKey,
        templates: &[NewTemplate],
        unique_below: f32,
    ) -> Result<User>;

    /// Adds templates of `model` to an existing user (atomically); returns
    /// their ids in input order. `NotFound` when the user does not exist;
    /// `TemplateLimit` when the user would then have more than
    /// `max_per_model` templates of `model` (checked inside the write, so
    /// concurrent additions cannot overshoot it); with `unique_below`,
    /// `Duplicate` as in [`FaceStore::create_unique_user`] for templates of
    /// users other than `user`.
    async fn add_templates(
        &self,
        user: UserId,
        model: &ModelKey,
        templates: &[NewTemplate],
        max_per_model: usize,
        unique_below: Option<f32>,
    ) -> Result<Vec<TemplateId>>;

    /// One user's templates of every model, without vectors, in id order.
    /// `NotFound` when the user does not exist.
    async fn templates_of(&self, user: UserId) -> Result<Vec<TemplateInfo>>;

    /// Deletes one template of one user. `NotFound` when the user does not
    /// exist or has no template with that id.
    async fn delete_template(&self, user: UserId, template: TemplateId) -> Result<()>;

    /// One user; `NotFound` when absent.
    async fn get_user(&self, id: UserId) -> Result<User>;

    /// Users in ascending id order, one page at a time.
    async fn list_users(&self, page: Page) -> Result<Vec<User>>;

    /// The users `filter` selects, in ascending id order, one page at a
    /// time.
    async fn find_users(&self, filter: &crate::types::UserFilter, page: Page) -> Result<Vec<User>>;

    /// Deletes a user and, by cascade, all their templates. `NotFound` when absent.
    async fn delete_user(&self, id: UserId) -> Result<()>;

    /// User count and template count per registered model.
    async fn stats(&self) -> Result<Stats>;

    /// The `k` users closest to `query` among templates of `model` only, each
    /// represented by their best template, in ascending distance (ties by
    /// user id). Distances are in the model's own metric.
    async fn search(&self, model: &ModelKey, query: &[f32], k: usize) -> Result<Vec<Match>>;

    /// The distance from `query` to the closest of one user's templates of
    /// `model` (1:1 verification), with the number compared. `NotFound`
    /// when the user does not exist; `Ok(None)` when they have no template
    /// of `model`.
    async fn distance_to_user(
        &self,
        user: UserId,
        model: &ModelKey,
        query: &[f32],
    ) -> Result<Option<UserDistance>>;

    /// Users that have no template of `model` (for re-enrolment reports), in
    /// ascending id order.
    async fn users_without_model(&self, model: &ModelKey, page: Page) -> Result<Vec<User>>;

    /// Cheap round trip to the database; `Unavailable` when it cannot answer.
    async fn health(&self) -> Result<()>;
}
