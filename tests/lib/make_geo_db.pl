#!/usr/bin/perl
# SPDX-License-Identifier: GPL-2.0-only
#
# A small country database in MaxMind DB format for the tests (Debian's
# libmaxmind-db-writer-perl): documentation ranges mapped to made-up countries (user-assigned
# ISO 3166 codes), in the layout of MaxMind's country databases (country.iso_code), or with
# --ip-location-db in that of ip-location-db's (country_code).
#
# Usage: make_geo_db.pl [--ip-location-db] OUT.mmdb [PREFIX=CC ...]
#   default: 198.51.100.0/24=XA 2001:db8:51::/48=XA 203.0.113.0/24=XB 2001:db8:bad::/48=XB
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $flat = @ARGV && $ARGV[0] eq '--ip-location-db' ? shift @ARGV : undef;
my $out = shift @ARGV or die "usage: $0 [--ip-location-db] OUT.mmdb [PREFIX=CC ...]\n";
my @map = @ARGV ? @ARGV
	: ('198.51.100.0/24=XA', '2001:db8:51::/48=XA', '203.0.113.0/24=XB', '2001:db8:bad::/48=XB');

my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version            => 6,
	record_size           => 24,
	database_type         => $flat ? 'carwall-test-ip-location-db' : 'carwall-test-Country',
	languages             => ['en'],
	description           => { en => 'carwall test countries (documentation ranges)' },
	map_key_type_callback => sub {
		{ country => 'map', iso_code => 'utf8_string', country_code => 'utf8_string' }->{ $_[0] }
	},
	# Documentation ranges are "reserved": the tests map them on purpose.
	remove_reserved_networks => 0,
	alias_ipv6_to_ipv4       => 1,
);
for my $m (@map) {
	my ($prefix, $cc) = split /=/, $m, 2;
	die "bad mapping '$m'\n" unless defined $cc && $cc =~ /^[A-Z]{2}$/;
	$tree->insert_network($prefix, $flat ? { country_code => $cc } : { country => { iso_code => $cc } });
}
open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
