//! One page of a list: what the store fetches (`LIMIT`/`OFFSET` over a stable order, by id) and
//! what it answers (the page's rows and the total they are part of). The HTTP side
//! (`http::page`) turns `page`/`per_page` into a [`Page`] and a [`Listed`] into GitLab's headers.

use serde::Serialize;

use super::db::{Db, Row, ToValue};
use super::Result;

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

/// One page of `SELECT {columns} FROM {from_where} ORDER BY {order_by}` and the number of rows
/// `from_where` selects in all. `from_where` (tables, joins and an optional `WHERE`) binds
/// `params` as `?1 … ?N`; the page's `LIMIT` and `OFFSET` are bound after them. Run it inside one
/// read transaction ([`super::Store::read`]) so the rows and the total come from one snapshot.
pub fn fetch<T>(
    db: &Db,
    columns: &str,
    from_where: &str,
    order_by: &str,
    params: &[&dyn ToValue],
    page: Page,
    row: impl Fn(&Row) -> Result<T>,
) -> Result<Listed<T>> {
    let total: i64 = db.query_one(&format!("SELECT count(*) FROM {from_where}"), params)?.get(0)?;
    let (limit, offset) = (page.limit(), page.offset());
    let mut bound: Vec<&dyn ToValue> = params.to_vec();
    bound.push(&limit);
    bound.push(&offset);
    let n = params.len();
    let sql = format!("SELECT {columns} FROM {from_where} ORDER BY {order_by} LIMIT ?{} OFFSET ?{}", n + 1, n + 2);
    let items = db.query(&sql, &bound)?.iter().map(row).collect::<Result<Vec<_>>>()?;
    Ok(Listed { total: u64::try_from(total).unwrap_or(0), items })
}

/// `text` as a `LIKE` pattern that matches it anywhere, ASCII case-insensitively when compared with
/// `lower(column) LIKE ?n ESCAPE '\'`: `%`, `_` and `\` in `text` match only themselves.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
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

    #[test]
    fn like_wildcards_in_a_search_match_only_themselves() {
        assert_eq!(contains_pattern("App"), "%app%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
