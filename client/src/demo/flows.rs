//! The affordability figures: money in and out over the window and the balance at both ends, per bank and combined.

use serde_json::{Value, json};

use super::WINDOW_DAYS;
use crate::tsp::{Booked, decimal};

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Flows {
    pub(super) income: i64,
    pub(super) spending: i64,
    opening: i64,
    closing: i64,
}

impl Flows {
    pub(super) fn of(closing: i64, booked: &[Booked]) -> Self {
        let income: i64 = booked.iter().map(|b| b.amount.minor.max(0)).sum();
        let spending: i64 = booked.iter().map(|b| (-b.amount.minor).max(0)).sum();
        Self {
            income,
            spending,
            opening: closing - income + spending,
            closing,
        }
    }

    pub(super) fn add(&mut self, other: &Flows) {
        self.income += other.income;
        self.spending += other.spending;
        self.opening += other.opening;
        self.closing += other.closing;
    }

    /// A per-month figure from a window total.
    pub(super) fn monthly(&self, total: i64) -> i64 {
        total * 30 / WINDOW_DAYS as i64
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "income {}/month, spending {}/month, balance {} -> {} ({})",
            decimal(self.monthly(self.income)),
            decimal(self.monthly(self.spending)),
            decimal(self.opening),
            decimal(self.closing),
            if self.closing >= self.opening {
                "rising"
            } else {
                "falling"
            }
        )
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "income": decimal(self.income),
            "spending": decimal(self.spending),
            "monthly_income": decimal(self.monthly(self.income)),
            "monthly_spending": decimal(self.monthly(self.spending)),
            "opening_balance": decimal(self.opening),
            "closing_balance": decimal(self.closing),
            "trend": if self.closing >= self.opening { "rising" } else { "falling" },
        })
    }
}
