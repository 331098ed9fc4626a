#!/usr/bin/perl
# A kept-open metadata reader built on exiftool's own library (Image::ExifTool).
#
# It answers what `exiftool -json -G0:1 -long -struct FILE` prints, minus each tag's "desc", plus the "id"
# that -D adds, on EXIF tags only (the join to their stored directory entries), through the
# same stay_open protocol (argument lines, then "-executeN"; the answer, then "{readyN}"). The exiftool
# command-line tool spends as long on its per-command work (option parsing, output formatting) as the
# library spends reading a file; this loop does only what the JSON needs, formatted as the tool does.
#
# Commands: "-ver" prints the library version; anything else is read as a file path (the last line).
# "-stay_open" "False" ends the loop, as it ends the tool's.
use strict;
use warnings;
use Image::ExifTool;
use Image::ExifTool::XMP;

binmode STDIN;
binmode STDOUT;
$| = 1;

my $et = Image::ExifTool->new;
# As the tool sets them for -json -struct: every duplicate extracted (named apart by their groups),
# lists as lists, XMP structures as structures, binary values as placeholders, tags in group order.
$et->Options(Duplicates => 1, List => 1, Struct => 1, Sort => 'Group0:1');

my %JSON_CHAR = ('"' => '"', "\t" => 't', "\n" => 'n', "\r" => 'r', '\\' => '\\');

sub escape {
    my ($str, $quote) = @_;
    unless ($quote) {
        return lc $str if $str =~ /^(true|false)$/i;
        return $str if $str =~ /^-?(\d|[1-9]\d{1,14})(\.\d{1,16})?(e[-+]?\d{1,3})?$/i;
    }
    $str =~ s/(["\t\n\r\\])/\\$JSON_CHAR{$1}/sg;
    $str =~ tr/\0//d;
    $str =~ s/([\0-\x1f])/sprintf("\\u%.4X", ord $1)/sge;
    Image::ExifTool::XMP::FixUTF8(\$str);
    return qq("$str");
}

sub binary_placeholder {
    my ($ref) = @_;
    my $text = $$ref =~ /^Binary data \d+ bytes$/ ? $$ref : 'Binary data ' . length($$ref) . ' bytes';
    return "($text, use -b option to extract)";
}

sub format_json {
    my ($val) = @_;
    my $ref = ref $val;
    return escape($val) unless $ref;
    return escape(binary_placeholder($val)) if $ref eq 'SCALAR';
    return '[' . join(',', map { format_json($_) } @$val) . ']' if $ref eq 'ARRAY';
    if ($ref eq 'HASH') {
        my @keys = $$val{_ordered_keys_} ? @{ $$val{_ordered_keys_} } : sort keys %$val;
        return '{' . join(',', map { escape($_, 1) . ':' . format_json($$val{$_}) } @keys) . '}';
    }
    return '"<err>"';
}

# A tag's numeric value is given only where it differs from the printed one (binary values never).
sub is_equal {
    my ($a, $b) = @_;
    return 1 if ref $a eq 'SCALAR' or (!ref $a and !ref $b and $a eq $b);
    if (ref $a eq 'HASH' and ref $b eq 'HASH') {
        return 0 if keys %$a != keys %$b;
        is_equal($$a{$_}, $$b{$_}) or return 0 for keys %$a;
        return 1;
    }
    return 0 if ref $a ne 'ARRAY' or ref $b ne 'ARRAY' or @$a != @$b;
    is_equal($$a[$_], $$b[$_]) or return 0 for 0 .. $#$a;
    return 1;
}

sub read_file {
    my ($path) = @_;
    my @tags;
    my $info = $et->ImageInfo($path, \@tags);
    my (%seen, @fields);
    for my $tag (@tags) {
        my $val = $$info{$tag};
        next unless defined $val;
        my $group = $et->GetGroup($tag, '0:1');
        # A duplicate ("Tag (1)") that a priority tag of the same group already names is left out.
        next if $tag =~ /^(.*?) ?\(/ and defined $$info{$1} and $group eq $et->GetGroup($1, '0:1');
        my $key = "$group:" . Image::ExifTool::GetTagName($tag);
        next if $seen{$key}++;
        my $field = '"val":' . format_json($val);
        my $num = $et->GetValue($tag, 'ValueConv');
        $field .= ',"num":' . format_json($num) if defined $num and not is_equal($num, $val);
        # EXIF tags also carry their id (as -D prints it): processors/metadata.py joins them on it to the
        # stored directory entries of processors/exif_ifds.py.
        my $id = $group =~ /^EXIF:/ ? $et->GetTagID($tag) : undef;
        $field .= ',"id":' . escape($id) if defined $id;
        push @fields, escape($key, 1) . ":{$field}";
    }
    return '[{' . join(',', escape('SourceFile', 1) . ':' . escape($path), @fields) . '}]';
}

my @args;
while (my $line = <STDIN>) {
    chomp $line;
    last if $line eq 'False' and @args and $args[-1] eq '-stay_open';
    if ($line =~ /^-execute(\d*)$/) {
        my $answer = @args && $args[0] eq '-ver' ? $Image::ExifTool::VERSION : read_file($args[-1] // '');
        print "$answer\n{ready$1}\n";
        @args = ();
    } else {
        push @args, $line;
    }
}
