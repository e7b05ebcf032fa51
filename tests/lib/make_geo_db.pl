#!/usr/bin/perl
# SPDX-License-Identifier: GPL-2.0-only
# Write a small country database in MaxMind DB format for the tests (Debian's
# libmaxmind-db-writer-perl):
#   make_geo_db.pl [--ip-location-db] OUT.mmdb [--type NAME] [--ipv4-only] [PREFIX=CC...]
# e.g. 203.0.113.0/25=xa 203.0.113.128/25=xb 2001:db8:a::/48=xa. Each network's record is
# {country => {iso_code => CC}} as in GeoLite2-Country (or {country_code => CC}, the
# ip-location-db form, when CC is written "cc:CC", or for every record with --ip-location-db).
# Without PREFIX=CC: 198.51.100.0/24=XA 2001:db8:51::/48=XA 203.0.113.0/24=XB
# 2001:db8:bad::/48=XB (documentation ranges, user-assigned codes). An IPv6 database (the
# default) maps IPv4 at ::/96 with the usual aliases (::ffff:0:0/96, 2002::/16), as real
# databases do.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $flat = @ARGV && $ARGV[0] eq '--ip-location-db' ? shift @ARGV : undef;
my $out = shift @ARGV
	or die "usage: $0 [--ip-location-db] OUT.mmdb [--type NAME] [--ipv4-only] [PREFIX=CC...]\n";
my $type = $flat ? 'carwall-test-ip-location-db' : 'carwall-test-country';
my $ip_version = 6;
my @nets;
while (my $a = shift @ARGV) {
	if ($a eq '--type') { $type = shift @ARGV; next; }
	if ($a eq '--ipv4-only') { $ip_version = 4; next; }
	my ($net, $cc) = split /=/, $a, 2;
	die "$0: '$a' is not PREFIX=CC\n" unless defined $cc && $net =~ m{/};
	push @nets, [$net, $cc];
}
@nets = map { [split /=/] } ('198.51.100.0/24=XA', '2001:db8:51::/48=XA', '203.0.113.0/24=XB',
	'2001:db8:bad::/48=XB') unless @nets;
my %types = (country => 'map', iso_code => 'utf8_string', country_code => 'utf8_string');
my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version => $ip_version,
	record_size => 24,
	database_type => $type,
	languages => ['en'],
	description => { en => 'carwall test country database' },
	map_key_type_callback => sub { $types{ $_[0] } },
	alias_ipv6_to_ipv4 => $ip_version == 6 ? 1 : 0,
	remove_reserved_networks => 0,
);
for my $n (@nets) {
	my ($net, $cc) = @$n;
	my $data = ($cc =~ s/^cc:// || $flat) ? { country_code => $cc } : { country => { iso_code => $cc } };
	$net = "::$net" if $ip_version == 6 && $net !~ /:/; # IPv4 in an IPv6 tree: ::a.b.c.d/n+96
	if ($ip_version == 6 && $net =~ m{^::(\d+\.\d+\.\d+\.\d+)/(\d+)$}) {
		$net = "::$1/" . ($2 + 96);
	}
	$tree->insert_network($net, $data);
}
open my $fh, '>:raw', $out or die "$0: $out: $!\n";
$tree->write_tree($fh);
close $fh or die "$0: $out: $!\n";
