//! The conformance checks of future-dated orders: a scheduled payment and a standing order each made once per key, read back as made, listed with the account's own, moving no money now; or refused as not offered.

use chrono::{Duration, DurationRound, Utc};

use super::{Fixture, available, offered, order};
use crate::connector::{
    BankConnector, ConnectorError, Resource, ScheduledOrder, StandingOrderOrder,
};
use crate::payments::schedule::{self, End, Frequency};

/// The future-dated order checks, for a connector that offers them.
pub fn run_future(connector: &dyn BankConnector, fixture: &Fixture) {
    // Whole seconds, as every core's date format keeps them.
    let in_a_week = (Utc::now() + Duration::days(7))
        .duration_trunc(Duration::seconds(1))
        .expect("a date");
    let before = available(connector, &fixture.account);
    let scheduled = ScheduledOrder {
        order: order(fixture, 2_500, "CONF-SCHED"),
        execution: in_a_week,
    };
    let made = connector.create_scheduled_payment("conformance-sched-1", &scheduled);
    if let Some(made) = offered(Resource::NewScheduledPayments, made) {
        let again = connector
            .create_scheduled_payment("conformance-sched-1", &scheduled)
            .expect("idempotent repeat");
        assert_eq!(again.scheduled_payment_id, made.scheduled_payment_id);
        let other = ScheduledOrder {
            order: order(fixture, 99, "CONF-SCHED-2"),
            ..scheduled.clone()
        };
        assert_eq!(
            connector.create_scheduled_payment("conformance-sched-1", &other),
            Err(ConnectorError::IdempotencyConflict)
        );
        let read = connector
            .scheduled_payment(&made.scheduled_payment_id)
            .expect("read back");
        assert_eq!(
            (&read.account_id, read.execution, read.amount.minor),
            (&fixture.account, in_a_week, 2_500)
        );
        assert!(matches!(
            connector.scheduled_payment("no-such-order"),
            Err(ConnectorError::NotFound(_))
        ));
        if let Ok(list) = connector.scheduled_payments(&fixture.account) {
            assert!(
                list.iter()
                    .any(|p| p.scheduled_payment_id == made.scheduled_payment_id),
                "a scheduled payment is listed with the account's own"
            );
        }
    }
    let frequency = "MNTH";
    let dates = schedule::dates(
        Frequency::parse(frequency).expect("MNTH"),
        in_a_week,
        None,
        End::Count(3),
    )
    .expect("three dates");
    let standing = StandingOrderOrder {
        order: order(fixture, 1_500, "CONF-SO"),
        frequency: frequency.into(),
        first: in_a_week,
        recurring_amount: order(fixture, 1_000, "").amount,
        final_amount: order(fixture, 1_000, "").amount,
        dates,
    };
    let made = connector.create_standing_order("conformance-so-1", &standing);
    if let Some(made) = offered(Resource::NewStandingOrders, made) {
        let again = connector
            .create_standing_order("conformance-so-1", &standing)
            .expect("idempotent repeat");
        assert_eq!(again.standing_order_id, made.standing_order_id);
        let other = StandingOrderOrder {
            frequency: "WEEK".into(),
            ..standing.clone()
        };
        assert_eq!(
            connector.create_standing_order("conformance-so-1", &other),
            Err(ConnectorError::IdempotencyConflict)
        );
        let read = connector
            .standing_order(&made.standing_order_id)
            .expect("read back");
        assert_eq!(
            (
                &read.account_id,
                read.frequency.as_str(),
                read.first_payment
            ),
            (&fixture.account, frequency, in_a_week)
        );
        assert!(read.active, "a new standing order is active");
        assert!(matches!(
            connector.standing_order("no-such-order"),
            Err(ConnectorError::NotFound(_))
        ));
        if let Ok(list) = connector.standing_orders(&fixture.account) {
            assert!(
                list.iter()
                    .any(|o| o.standing_order_id == made.standing_order_id),
                "a standing order is listed with the account's own"
            );
        }
    }
    assert_eq!(
        available(connector, &fixture.account),
        before,
        "future-dated orders move no money now"
    );
}
