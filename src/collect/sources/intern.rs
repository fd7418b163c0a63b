//! One copy of each string that many keys or users of an account repeat.

use std::collections::HashSet;
use std::sync::Arc;

/// Lives while a source builds one account's data, so it holds only that
/// account's values and is dropped with the parse, never growing across
/// refreshes.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    seen: HashSet<Arc<str>>,
}

impl Interner {
    pub(crate) fn get(&mut self, value: &str) -> Arc<str> {
        if let Some(shared) = self.seen.get(value) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(value);
        self.seen.insert(Arc::clone(&shared));
        shared
    }

    /// A value already allocated elsewhere (by a task that had no access to
    /// the interner): the shared copy if there is one, so the other is freed.
    pub(crate) fn share(&mut self, value: Arc<str>) -> Arc<str> {
        match self.seen.get(&value) {
            Some(shared) => Arc::clone(shared),
            None => {
                self.seen.insert(Arc::clone(&value));
                value
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_allocation() {
        let mut interner = Interner::default();
        let a = interner.get("s3");
        let b = interner.get("s3");
        let c = interner.share(Arc::from("s3"));
        assert!(Arc::ptr_eq(&a, &b) && Arc::ptr_eq(&a, &c));
        assert!(!Arc::ptr_eq(&a, &interner.get("iam")));
    }
}
