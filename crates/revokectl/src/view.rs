//! What the TUI shows: the main [`View`], the [`StatusFilter`] tabs, and the token table's
//! [`Column`]s and [`Sort`]. Plain values named by actions, the hit map and the state; a
//! leaf module (it imports nothing else of this crate).

use rocket_revoke_core::store::TokenStatus;

/// The status filter cycled by Tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Every token.
    All,
    /// Neither revoked nor expired.
    Active,
    /// Covered by a revocation.
    Revoked,
    /// Past `exp`.
    Expired,
}

impl StatusFilter {
    /// In tab order.
    pub const ALL: [StatusFilter; 4] = [
        StatusFilter::All,
        StatusFilter::Active,
        StatusFilter::Revoked,
        StatusFilter::Expired,
    ];

    /// Tab label.
    pub fn label(self) -> &'static str {
        match self {
            StatusFilter::All => "All",
            StatusFilter::Active => "Active",
            StatusFilter::Revoked => "Revoked",
            StatusFilter::Expired => "Expired",
        }
    }

    /// The store filter.
    pub fn status(self) -> Option<TokenStatus> {
        match self {
            StatusFilter::All => None,
            StatusFilter::Active => Some(TokenStatus::Active),
            StatusFilter::Revoked => Some(TokenStatus::Revoked),
            StatusFilter::Expired => Some(TokenStatus::Expired),
        }
    }

    /// Position in [`StatusFilter::ALL`].
    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }

    /// The filter `by` tabs away, wrapping around.
    pub(crate) fn step(self, by: isize) -> Self {
        let n = Self::ALL.len() as isize;
        Self::ALL[(self.index() as isize + by).rem_euclid(n) as usize]
    }
}

/// The main view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The token table.
    Tokens,
    /// The audit trail.
    Events,
}

/// A column of the token table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Active, revoked, expired.
    Status,
    /// `sub`.
    Subject,
    /// `jti`.
    Jti,
    /// access, refresh, external.
    Kind,
    /// `iat`.
    Issued,
    /// `exp`.
    Expires,
    /// Last seen by a guard.
    LastSeen,
}

impl Column {
    /// In display order.
    pub const ALL: [Column; 7] = [
        Column::Status,
        Column::Subject,
        Column::Jti,
        Column::Kind,
        Column::Issued,
        Column::Expires,
        Column::LastSeen,
    ];

    /// Header text.
    pub fn title(self) -> &'static str {
        match self {
            Column::Status => "Status",
            Column::Subject => "Subject",
            Column::Jti => "JTI",
            Column::Kind => "Kind",
            Column::Issued => "Issued (UTC)",
            Column::Expires => "Expires",
            Column::LastSeen => "Last seen",
        }
    }

    /// The next column in display order, wrapping around.
    pub(crate) fn next(self) -> Self {
        let i = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// Sorting of the loaded rows. The database always pages newest first; the default sort
/// (issued, descending) is that order, other sorts reorder what is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The column.
    pub column: Column,
    /// Largest first.
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            column: Column::Issued,
            descending: true,
        }
    }
}
