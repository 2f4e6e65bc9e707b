//! A prefix listed one page at a time through the object port. The caller holds one page,
//! never the whole listing, and the cursor is explicit so a long listing can be checkpointed
//! and resumed.

use crate::port::objects::{ListedObject, ObjectError, ObjectStore};

pub struct PrefixLister<'a> {
    objects: &'a dyn ObjectStore,
    bucket: String,
    prefix: String,
    page_size: i32,
    next_token: Option<String>,
    done: bool,
}

impl<'a> PrefixLister<'a> {
    pub fn new(objects: &'a dyn ObjectStore, bucket: &str, prefix: &str, page_size: i32) -> Self {
        Self {
            objects,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            page_size,
            next_token: None,
            done: false,
        }
    }

    /// A listing that resumes after `cursor` (from [`Self::cursor`]).
    pub fn resume(self, cursor: String) -> Self {
        Self {
            next_token: Some(cursor),
            ..self
        }
    }

    /// Where the listing would resume: `None` before the first page and at the end.
    pub fn cursor(&self) -> Option<&str> {
        self.next_token.as_deref()
    }

    /// The next page, or `None` once the listing is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ListedObject>>, ObjectError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .objects
            .list_page(
                &self.bucket,
                &self.prefix,
                self.page_size,
                self.next_token.take(),
            )
            .await?;
        self.next_token = page.next;
        self.done = self.next_token.is_none();
        Ok(Some(page.objects))
    }
}
