//! One page of a list: what the store fetches (`LIMIT`/`OFFSET` over a stable order, by id) and
//! what it answers (the page's rows and the total they are part of). The HTTP side
//! (`http::page`) turns `page`/`per_page` into a [`Page`] and a [`Listed`] into GitLab's headers.

use serde::Serialize;

/// Lists show this many rows unless asked otherwise (GitLab's default).
pub const DEFAULT_PER_PAGE: u64 = 20;
/// No page is longer than this (GitLab's maximum); a larger `per_page` is clamped to it.
pub const MAX_PER_PAGE: u64 = 100;

/// Page `number` (from 1) of `per_page` rows (1..=[`MAX_PER_PAGE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    number: u64,
    per_page: u64,
}

impl Default for Page {
    fn default() -> Self {
        Page { number: 1, per_page: DEFAULT_PER_PAGE }
    }
}

impl Page {
    /// Page `number` of `per_page` rows; `number` below 1 is page 1, `per_page` is clamped to
    /// 1..=[`MAX_PER_PAGE`].
    pub fn new(number: u64, per_page: u64) -> Page {
        Page { number: number.max(1), per_page: per_page.clamp(1, MAX_PER_PAGE) }
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn per_page(&self) -> u64 {
        self.per_page
    }

    /// The SQL `LIMIT` (bind as a parameter).
    pub fn limit(&self) -> i64 {
        self.per_page as i64
    }

    /// The SQL `OFFSET` (bind as a parameter); saturates instead of overflowing.
    pub fn offset(&self) -> i64 {
        i64::try_from((self.number - 1).saturating_mul(self.per_page)).unwrap_or(i64::MAX)
    }

    /// How many pages `total` rows make (at least 1, so an empty list has page 1 of 1).
    pub fn pages(&self, total: u64) -> u64 {
        total.div_ceil(self.per_page).max(1)
    }
}

/// The rows of one page and how many rows the whole list has.
#[derive(Debug, Clone, Serialize)]
pub struct Listed<T> {
    pub total: u64,
    pub items: Vec<T>,
}

impl<T> Listed<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed { total: self.total, items: self.items.into_iter().map(f).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_page_counts() {
        let p = Page::new(3, 20);
        assert_eq!((p.limit(), p.offset()), (20, 40));
        assert_eq!(p.pages(0), 1);
        assert_eq!(p.pages(41), 3);
        assert_eq!(Page::new(0, 500), Page::new(1, 100));
        assert_eq!(Page::new(u64::MAX, 100).offset(), i64::MAX);
    }
}
