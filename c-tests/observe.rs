//! Tests of the observation features (issue 6): LWKT_STATS, lost-token
//! detection, LWKT_DEBUG, LWKT_CHAOS and the start-up check of the LWKT_
//! variables. The C programs are in c-tests/observe/.
